"""Pulls that go wrong on the wire (cut halfway, abandoned, corrupt), and re-pulls.

A real registry cannot be told to hang up after N bytes, to go slowly or to
serve a blob that does not match its digest, so these tests use
:class:`FakeRegistry`, a loopback server speaking the few OCI routes a pull needs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamaport.storage.manifest import MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL, Layer, Manifest
from llamaport.storage.registry import PARTIAL_SUFFIX, STATE_SUFFIX
from llamaport.storage.store import Store
from tests.compat._native import ndjson
from tests.compat._registry import FakeRegistry, sha256
from tests.conftest import Server, _launch

BLOB_SIZE = 40 << 20
"""Three parts of at most 16 MiB, fetched in parallel."""
CUT_AFTER = 20 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: the models pulled here are not GGUF files, and no other
    test should find them in its store."""
    srv = _launch(tmp_path_factory.mktemp("resume-home"), {})
    yield srv
    srv.stop()


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()
    yield registry
    registry.stop()


def serve_model(
    registry: FakeRegistry, repository: str, weights: bytes, served: bytes | None = None
) -> tuple[str, str]:
    """Publish a model whose weights are ``weights`` (served as ``served``); its name and digest."""
    config = b'{"model_format":"gguf","model_family":"llama"}'
    manifest = Manifest(
        config=Layer(MEDIA_TYPE_CONFIG, sha256(config), len(config)),
        layers=[Layer(MEDIA_TYPE_MODEL, sha256(weights), len(weights))],
    )
    blobs = {sha256(config): config, sha256(weights): weights if served is None else served}
    registry.add_model(repository, "v1", manifest.to_json(), blobs)
    return f"{registry.host}/{repository}:v1", sha256(weights)


def pull(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    response = client.post("/api/pull", json={"model": name, "insecure": True}, timeout=300)
    return ndjson(response)


def traces(models: Path, digest: str) -> list[str]:
    """Every file in the store named after ``digest``: the blob, its partial, its state."""
    return sorted(p.name for p in (models / "blobs").glob(f"sha256-{digest[7:]}*"))


def test_an_interrupted_pull_resumes_with_only_the_missing_bytes(
    server: Server, fake_registry: FakeRegistry
) -> None:
    weights = os.urandom(BLOB_SIZE)
    name, digest = serve_model(fake_registry, "test/resume", weights)
    models = server.home / "models"
    fake_registry.budget = [CUT_AFTER]
    with server.client(timeout=300) as client:
        first = pull(client, name)
        assert "error" in first[-1] and "pull blob" in first[-1]["error"]
        hexdigest = digest[7:]
        assert traces(models, digest) == [
            f"sha256-{hexdigest}{PARTIAL_SUFFIX}",
            f"sha256-{hexdigest}{STATE_SUFFIX}",
        ]
        state = json.loads((models / "blobs" / f"sha256-{hexdigest}{STATE_SUFFIX}").read_text())
        kept = sum(completed for _, _, completed in state["parts"])
        assert 0 < kept < BLOB_SIZE
        assert len(state["parts"]) == 3

        fake_registry.budget = None
        fake_registry.ranges.clear()
        second = pull(client, name)
    assert second[-1] == {"status": "success"}
    progress = [e for e in second if e.get("digest") == digest]
    assert progress[0]["completed"] == kept  # it starts from what the first try kept
    assert fake_registry.requested_bytes(digest) == BLOB_SIZE - kept
    assert all(r.startswith("bytes=") for _, r in fake_registry.ranges)
    assert traces(models, digest) == [f"sha256-{hexdigest}"]
    blob = Store(models).blob_path(digest).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == hexdigest


def test_a_blob_that_does_not_match_its_digest_leaves_nothing(
    server: Server, fake_registry: FakeRegistry
) -> None:
    weights = os.urandom(4096)
    corrupt = bytes([weights[0] ^ 0xFF]) + weights[1:]
    name, digest = serve_model(fake_registry, "test/corrupt", weights, served=corrupt)
    models = server.home / "models"
    expected = (
        f"digest mismatch, file must be downloaded again: want {digest}, got {sha256(corrupt)}"
    )
    with server.client(timeout=300) as client:
        events = pull(client, name)
        assert events[-1] == {"error": expected}
        assert traces(models, digest) == []
        assert Store(models).find(name) is None

        blocking = client.post("/api/pull", json={"model": name, "insecure": True, "stream": False})
        assert (blocking.status_code, blocking.json()) == (502, {"error": expected})
        assert traces(models, digest) == []

        fake_registry.blobs[digest] = weights  # the registry is repaired: nothing stale blocks
        assert pull(client, name)[-1] == {"status": "success"}
    assert traces(models, digest) == [f"sha256-{digest[7:]}"]


def test_a_client_that_leaves_stops_the_pull_and_keeps_its_bytes(
    server: Server, fake_registry: FakeRegistry
) -> None:
    weights = os.urandom(BLOB_SIZE)
    name, digest = serve_model(fake_registry, "test/leave", weights)
    fake_registry.delay = 0.2  # about 15 s for the whole blob
    body = {"model": name, "insecure": True}
    with server.client(timeout=300) as client:
        with client.stream("POST", "/api/pull", json=body) as response:
            for line in response.iter_lines():
                if json.loads(line).get("completed", 0) > 0:
                    break  # closing the response here hangs up on the server

        fake_registry.delay = 0.0
        fake_registry.ranges.clear()
        second = pull(client, name)
    assert second[-1] == {"status": "success"}
    kept = next(e for e in second if e.get("digest") == digest)["completed"]
    assert 0 < kept < BLOB_SIZE  # the first pull stopped, and its bytes were kept
    assert fake_registry.requested_bytes(digest) == BLOB_SIZE - kept
    assert traces(server.home / "models", digest) == [f"sha256-{digest[7:]}"]


def repull_changed_tag(server: Server, registry: FakeRegistry) -> tuple[list[str], bool]:
    """Pull a tag, change it, pull again: the second statuses, and whether the old blob stayed."""
    name, old = serve_model(registry, "test/moving", os.urandom(2048))
    models = server.home / "models"
    with server.client(timeout=300) as client:
        first = [e["status"] for e in pull(client, name)]
        assert "removing unused layers" not in first
        assert traces(models, old) == [f"sha256-{old[7:]}"]
        _, new = serve_model(registry, "test/moving", os.urandom(2048))
        second = [e["status"] for e in pull(client, name)]
    assert traces(models, new) == [f"sha256-{new[7:]}"]
    return second, bool(traces(models, old))


def test_pulling_a_changed_tag_removes_the_layers_nothing_uses(
    server: Server, fake_registry: FakeRegistry
) -> None:
    statuses, old_kept = repull_changed_tag(server, fake_registry)
    assert statuses[-3:] == ["writing manifest", "removing unused layers", "success"]
    assert not old_kept


def test_noprune_keeps_the_old_layers(
    start_server: Callable[..., Server], fake_registry: FakeRegistry
) -> None:
    statuses, old_kept = repull_changed_tag(start_server(LLAMAPORT_NOPRUNE="1"), fake_registry)
    assert statuses[-2:] == ["writing manifest", "success"]
    assert old_kept


def test_concurrent_pulls_of_one_blob_share_the_download(
    server: Server, fake_registry: FakeRegistry
) -> None:
    weights = os.urandom(BLOB_SIZE)
    first, digest = serve_model(fake_registry, "test/shared-a", weights)
    second, _ = serve_model(fake_registry, "test/shared-b", weights)
    fake_registry.delay = 0.02
    with server.client(timeout=300) as client, ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda name: pull(client, name), [first, second]))
    assert [events[-1] for events in results] == [{"status": "success"}] * 2
    assert fake_registry.requested_bytes(digest) == BLOB_SIZE
    assert traces(server.home / "models", digest) == [f"sha256-{digest[7:]}"]


def test_a_pull_resumes_after_the_server_was_killed(
    start_server: Callable[..., Server], fake_registry: FakeRegistry
) -> None:
    weights = os.urandom(BLOB_SIZE)
    name, digest = serve_model(fake_registry, "test/killed", weights)
    fake_registry.delay = 0.2
    killed = start_server()
    state = killed.home / "models" / "blobs" / f"sha256-{digest[7:]}{STATE_SUFFIX}"
    with (
        killed.client(timeout=300) as client,
        client.stream("POST", "/api/pull", json={"model": name, "insecure": True}) as response,
    ):
        for line in response.iter_lines():
            saved = json.loads(state.read_text()) if state.exists() else {"parts": []}
            if any(completed for _, _, completed in saved["parts"]):
                break  # some progress is on disk: kill the server mid-download
            assert "error" not in json.loads(line)
        killed.proc.kill()
        killed.proc.wait(timeout=10)

    fake_registry.delay = 0.0
    fake_registry.ranges.clear()
    revived = start_server(home=killed.home)
    with revived.client(timeout=300) as client:
        events = pull(client, name)
    assert events[-1] == {"status": "success"}
    kept = next(e for e in events if e.get("digest") == digest).get("completed", 0)
    assert 0 < kept < BLOB_SIZE
    assert fake_registry.requested_bytes(digest) == BLOB_SIZE - kept
    blob = Store(revived.home / "models").blob_path(digest).read_bytes()
    assert blob == weights
