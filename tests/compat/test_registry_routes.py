"""``/api/pull`` and ``/api/push`` against Debian's docker-registry (distribution 2.8).

The round trip goes through the routes (create, push, delete, pull, generate).
The other tests set up their models through :class:`Store` on the server's own
store directory (the server holds no state about the store, so it sees the
changes at once).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import ollama
import pytest

from llamaport.storage.store import Store
from tests.compat._native import ndjson, single_json
from tests.compat._registry import DockerRegistry
from tests.compat.conftest import REGISTRY_PASSWORD, REGISTRY_USER
from tests.conftest import MODEL, Server, free_port

Json = dict[str, Any]


def store_of(server: Server) -> Store:
    return Store(server.home / "models")


def transfer(client: httpx.Client, route: str, model: str, **extra: Any) -> list[Json]:
    response = client.post(route, json={"model": model, "insecure": True, **extra}, timeout=300)
    return ndjson(response)


def statuses(events: list[Json]) -> list[str]:
    """Status lines in order, each run of repeats folded into one."""
    out: list[str] = []
    for event in events:
        if not out or out[-1] != event["status"]:
            out.append(event["status"])
    return out


def check_layer_progress(events: list[Json], verb: str, digests: set[str]) -> None:
    """Each layer reports ``<verb> <12 hex>`` with its digest, ending complete."""
    layers = [e for e in events if e["status"].startswith(f"{verb} ") and "digest" in e]
    assert {e["digest"] for e in layers} == digests
    for event in layers:
        assert event["status"] == f"{verb} {event['digest'][7:19]}"
        assert 0 <= event.get("completed", 0) <= event["total"]
    for digest in digests:
        last = [e for e in layers if e["digest"] == digest][-1]
        assert last["completed"] == last["total"]


def test_round_trip_push_remove_pull_run(
    start_server: Any, docker_registry: DockerRegistry
) -> None:
    server = start_server()
    store = store_of(server)
    name = f"{docker_registry.host}/test/roundtrip:v1"
    with server.client(timeout=300) as client:
        created = client.post(
            "/api/create", json={"model": name, "from": MODEL, "system": "Answer briefly."}
        )
        assert ndjson(created)[-1] == {"status": "success"}
        manifest, sent = store.read_manifest(store.resolve(name))
        digests = {layer.digest for layer in manifest.all_layers()}
        pushed = transfer(client, "/api/push", name)
        assert statuses(pushed)[0] == "retrieving manifest"
        assert statuses(pushed)[-2:] == ["pushing manifest", "success"]
        check_layer_progress(pushed, "pushing", digests)

        for model in (name, MODEL):  # MODEL shares the weights: drop it so the pull must fetch them
            assert client.request("DELETE", "/api/delete", json={"model": model}).status_code == 200
        assert not any(store.has_blob(d) for d in digests)

        pulled = transfer(client, "/api/pull", name)
        assert statuses(pulled)[0] == "pulling manifest"
        assert statuses(pulled)[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        check_layer_progress(pulled, "pulling", digests)
        _, received = store.read_manifest(store.resolve(name))
        assert received == sent  # byte for byte, so the model digest survives the trip
        tags = client.get("/api/tags").json()["models"]
        listed = {m["name"]: m["digest"] for m in tags}
        assert listed[name] == hashlib.sha256(sent).hexdigest()

        answer = client.post(
            "/api/generate",
            json={"model": name, "prompt": "Hi", "stream": False, "options": {"num_predict": 4}},
        )
        body = single_json(answer)
        assert body["done"] is True and body["eval_count"] >= 1


def test_pushing_a_copy_mounts_the_blobs(server: Server, docker_registry: DockerRegistry) -> None:
    store = store_of(server)
    first = f"{docker_registry.host}/test/mount-source:v1"
    second = f"{docker_registry.host}/test/mount-target:v1"
    store.copy(MODEL, first)
    store.copy(MODEL, second)
    with server.client(timeout=300) as client:
        assert statuses(transfer(client, "/api/push", first))[-1] == "success"
        assert statuses(transfer(client, "/api/push", second))[-1] == "success"
    log = docker_registry.log_text()
    # The source is any repository there that holds the blobs: mount-source, or one an
    # earlier test of the session pushed from this server.
    mounts = re.findall(
        r'"POST /v2/test/mount-target/blobs/uploads/\?mount=sha256\S+ [^"]+" (\d+)', log
    )
    assert mounts and set(mounts) == {"201"}
    assert '"PATCH /v2/test/mount-target/' not in log


def test_pushing_again_skips_existing_blobs(
    server: Server, docker_registry: DockerRegistry
) -> None:
    store = store_of(server)
    name = f"{docker_registry.host}/test/twice:v1"
    store.copy(MODEL, name)
    with server.client(timeout=300) as client:
        transfer(client, "/api/push", name)
        again = transfer(client, "/api/push", name)
    layers = [e for e in again if e["status"].startswith("pushing ") and "digest" in e]
    # A blob the registry has is reported complete at once: no partial progress.
    assert all(e.get("completed", 0) in (0, e["total"]) for e in layers)
    assert statuses(again)[-1] == "success"


def test_pull_of_an_unknown_model(server: Server, docker_registry: DockerRegistry) -> None:
    name = f"{docker_registry.host}/test/nothing-here:v1"
    with server.client() as client:
        events = transfer(client, "/api/pull", name)
        assert events == [
            {"status": "pulling manifest"},
            {"error": "pull model manifest: file does not exist"},
        ]
        response = client.post("/api/pull", json={"model": name, "insecure": True, "stream": False})
    assert response.status_code == 404
    assert response.json() == {"error": "pull model manifest: file does not exist"}
    manifests = server.home / "models" / "manifests" / docker_registry.host
    assert not (manifests / "test" / "nothing-here").exists()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "http://127.0.0.1:1/test/m:v1"}, 400, "insecure protocol http"),
        ({"model": "bad//name"}, 400, "invalid model name"),
        ({"model": ""}, 400, "invalid model name"),
        ({"model": 7}, 400, None),
    ],
    ids=["http-without-insecure", "bad-name", "empty", "wrong-type"],
)
def test_pull_refuses_bad_input(
    client: httpx.Client, body: Json, status: int, error: str | None
) -> None:
    response = client.post("/api/pull", json=body)
    assert response.status_code == status
    if error is not None:
        assert response.json() == {"error": error}


def test_an_unreachable_registry_is_named_in_plain_words(
    client: httpx.Client, docker_registry: DockerRegistry
) -> None:
    """Offline users see the host and the cause, never an errno; insecure only when it applies."""
    closed = f"127.0.0.1:{free_port()}"
    cases = [
        ({"model": "registry.invalid/library/m:v1"}, "registry.invalid", "name not resolved"),
        ({"model": f"{closed}/test/m:v1", "insecure": True}, closed, "connection refused"),
        (
            {"model": f"{docker_registry.host}/test/m:v1"},
            docker_registry.host,
            "it answers plain HTTP, not HTTPS (use insecure for a plain-HTTP registry)",
        ),
    ]
    for body, host, cause in cases:
        response = client.post("/api/pull", json={**body, "stream": False}, timeout=60)
        assert response.status_code == 502, body
        assert response.json() == {"error": f"could not reach {host}: {cause}"}


def test_push_needs_a_model_that_exists(client: httpx.Client) -> None:
    response = client.post("/api/push", json={})
    assert (response.status_code, response.json()) == (400, {"error": "model is required"})
    missing = client.post(
        "/api/push", json={"model": "127.0.0.1:1/test/missing:v1", "stream": False}
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "model '127.0.0.1:1/test/missing:v1' not found"}


def test_name_field_and_stream_false(server: Server, docker_registry: DockerRegistry) -> None:
    store = store_of(server)
    name = f"{docker_registry.host}/test/legacy-name:v1"
    store.copy(MODEL, name)
    with server.client(timeout=300) as client:
        pushed = client.post("/api/push", json={"name": name, "insecure": True, "stream": False})
        assert single_json(pushed) == {"status": "success"}
        pulled = client.post("/api/pull", json={"name": name, "insecure": True, "stream": False})
        assert single_json(pulled) == {"status": "success"}


def test_basic_auth_from_the_environment(
    start_server: Any, server: Server, auth_registry: DockerRegistry
) -> None:
    name = f"{auth_registry.host}/test/private:v1"
    with server.client() as client:
        refused = client.post("/api/pull", json={"model": name, "insecure": True, "stream": False})
    assert refused.status_code == 401
    assert "401" in refused.json()["error"]

    authed = start_server(LLAMAPORT_REGISTRY_AUTH=f"{REGISTRY_USER}:{REGISTRY_PASSWORD}")
    store = store_of(authed)
    store.copy(MODEL, name)
    with authed.client(timeout=300) as client:
        assert statuses(transfer(client, "/api/push", name))[-1] == "success"
        store.delete(name)
        assert statuses(transfer(client, "/api/pull", name))[-1] == "success"
    assert store.find(name) is not None
    assert json.loads(store.manifest_path(store.resolve(name)).read_bytes())["layers"]


def test_the_ollama_client_pushes_and_pulls(
    server: Server, docker_registry: DockerRegistry
) -> None:
    api = ollama.Client(host=server.url)
    store = store_of(server)
    name = f"{docker_registry.host}/test/ollama-client:v1"
    store.copy(MODEL, name)
    parts = list(api.push(name, insecure=True, stream=True))
    assert parts[-1].status == "success"
    assert any(p.digest and p.completed == p.total for p in parts)
    store.delete(name)
    assert api.pull(name, insecure=True).status == "success"
    with pytest.raises(ollama.ResponseError) as caught:
        api.pull(f"{docker_registry.host}/test/absent:v1", insecure=True)
    assert caught.value.status_code == 404
    assert caught.value.error == "pull model manifest: file does not exist"
