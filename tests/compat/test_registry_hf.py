"""``/api/pull`` of ``hf.co/<org>/<repo>[:<quant>]`` against a local Hub (``HF_ENDPOINT``).

:class:`FakeHub` answers the calls huggingface_hub makes: model info with
file metadata, then HEAD and GET on ``resolve`` URLs. The Q4_K_M file is the
real smollm2 GGUF, so the default pull can be run; the other quantisations
are tiny GGUF fixtures that only need to be told apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from llamaport.storage.embedded import embedded_gguf_path
from llamaport.storage.registry import PARTIAL_SUFFIX, STATE_SUFFIX
from llamaport.storage.store import Store
from tests.compat._native import ndjson, single_json
from tests.compat._registry import FakeHub, HubFile
from tests.conftest import MODEL, Server, _launch, free_port
from tests.storage.conftest import write_gguf

REPO = "test-org/SmolLM2-GGUF"
REAL = "SmolLM2-135M-Instruct-Q4_K_M.gguf"
BIG = "SmolLM2-135M-Instruct-F32.gguf"
"""32 MiB of GGUF that no other test pulls: the interrupted download."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    files = tmp_path_factory.mktemp("hub-files")
    real = embedded_gguf_path()
    assert real is not None
    tiny = {
        name: write_gguf(files / name)
        for name in (
            "SmolLM2-135M-Instruct-Q8_0.gguf",
            "SmolLM2-135M-Instruct-Q2_K.gguf",
            "mmproj-SmolLM2-f16.gguf",
        )
    }
    big = write_gguf(files / BIG, extra=lambda w: w.add_tensor("big", np.ones(8 << 20, np.float32)))
    hub = FakeHub()
    hub.repos[REPO] = [
        HubFile(BIG, path=big),
        HubFile("README.md", data=b"# SmolLM2 GGUF\n"),
        HubFile(REAL, path=real),
        *(HubFile(name, path=path) for name, path in tiny.items()),
    ]
    hub.repos["test-org/Broken-GGUF"] = [HubFile("broken-Q4_K_M.gguf", data=b"GGUF but no")]
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def hub_server(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("hf-home")
    srv = _launch(home, {"HF_ENDPOINT": hub.url, "HF_HOME": str(home / "hf-cache")})
    Store(home / "models").delete(MODEL)  # its blob is the Hub's Q4_K_M: make the pull fetch it
    yield srv
    srv.stop()


def pull(server: Server, model: str, **extra: Any) -> Any:
    with server.client(timeout=300) as client:
        return client.post("/api/pull", json={"model": model, **extra})


def leftovers(server: Server) -> list[str]:
    """Download state left in the store: -partial files and their part tables."""
    return sorted(p.name for p in (server.home / "models" / "blobs").glob(f"*{PARTIAL_SUFFIX}*"))


def test_default_tag_pulls_q4_k_m_and_the_model_runs(hub: FakeHub, hub_server: Server) -> None:
    hub.downloads.clear()
    events = ndjson(pull(hub_server, f"hf.co/{REPO}"))
    assert set(hub.downloads) == {REAL}  # in ranged parts
    steps = [e["status"] for e in events]
    assert steps[0] == "pulling manifest"
    assert steps[-2:] == ["writing manifest", "success"]
    assert "verifying sha256 digest" in steps
    weights = [e for e in events if e.get("total") and e["total"] > 10_000_000]
    assert weights[-1]["completed"] == weights[-1]["total"]
    assert weights[0]["status"] == f"pulling {weights[0]['digest'][7:19]}"

    models = hub_server.home / "models"
    assert (models / "manifests" / "hf.co" / "test-org" / "SmolLM2-GGUF" / "latest").is_file()
    record = Store(models).get(f"hf.co/{REPO}")
    assert record.model_path.read_bytes()[:4] == b"GGUF"
    assert record.config["model_family"] == "llama"
    assert leftovers(hub_server) == []
    with hub_server.client(timeout=300) as client:
        names = [m["name"] for m in client.get("/api/tags").json()["models"]]
        assert f"hf.co/{REPO}:latest" in names
        answer = client.post(
            "/api/generate",
            json={
                "model": f"hf.co/{REPO}",
                "prompt": "Hi",
                "stream": False,
                "options": {"num_predict": 4},
            },
        )
    assert single_json(answer)["done"] is True


def test_a_quantisation_tag_chooses_its_file(hub: FakeHub, hub_server: Server) -> None:
    hub.downloads.clear()
    response = pull(hub_server, f"huggingface.co/{REPO}:q8_0", stream=False)
    assert single_json(response) == {"status": "success"}
    assert hub.downloads == ["SmolLM2-135M-Instruct-Q8_0.gguf"]
    manifests = hub_server.home / "models" / "manifests"
    assert (manifests / "huggingface.co" / "test-org" / "SmolLM2-GGUF" / "q8_0").is_file()


def test_an_unknown_quantisation_lists_what_there_is(hub_server: Server) -> None:
    response = pull(hub_server, f"hf.co/{REPO}:Q5_K_M", stream=False)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error.startswith(f'hf.co/{REPO} has no GGUF file for tag "Q5_K_M" (available: ')
    assert REAL in error and "mmproj" not in error


def test_an_unknown_repository_is_file_does_not_exist(hub_server: Server) -> None:
    response = pull(hub_server, "hf.co/test-org/missing", stream=False)
    assert response.status_code == 404
    assert response.json() == {"error": "pull model manifest: file does not exist"}
    events = ndjson(pull(hub_server, "hf.co/test-org/missing"))
    assert events[-1] == {"error": "pull model manifest: file does not exist"}


def test_a_file_that_is_not_gguf_leaves_nothing(hub_server: Server) -> None:
    models = hub_server.home / "models"
    before = sorted(p.name for p in (models / "blobs").iterdir())
    response = pull(hub_server, "hf.co/test-org/Broken-GGUF", stream=False)
    assert response.status_code == 502
    assert response.json() == {"error": "broken-Q4_K_M.gguf: not a valid GGUF file"}
    assert sorted(p.name for p in (models / "blobs").iterdir()) == before
    assert not (models / "manifests" / "hf.co" / "test-org" / "Broken-GGUF").exists()


def test_names_outside_the_grammar_are_refused(hub_server: Server) -> None:
    for name in ("hf.co/org.with.dots/repo", "hf.co/test-org/two..dots"):
        response = pull(hub_server, name, stream=False)  # ours, then the Hub's rule
        assert (response.status_code, response.json()) == (400, {"error": "invalid model name"})


def test_a_file_already_stored_is_not_downloaded_again(hub: FakeHub, hub_server: Server) -> None:
    assert single_json(pull(hub_server, f"hf.co/{REPO}", stream=False))["status"] == "success"
    hub.downloads.clear()
    events = ndjson(pull(hub_server, f"hf.co/{REPO}:Q4_K_M"))
    assert hub.downloads == []
    assert events[-1] == {"status": "success"}
    assert Store(hub_server.home / "models").get(f"hf.co/{REPO}:Q4_K_M").config["model_family"]


def test_an_interrupted_download_resumes_with_only_the_missing_bytes(
    hub: FakeHub, hub_server: Server
) -> None:
    """The Hub's file is fetched in ranged parts kept in a -partial file across pulls."""
    name = f"hf.co/{REPO}:F32"
    models = hub_server.home / "models"
    (big,) = [f for f in hub.repos[REPO] if f.name == BIG]
    data = big.content()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    hub.budget = [12 << 20]
    failed = pull(hub_server, name, stream=False)
    assert failed.status_code == 502
    assert Store(models).find(name) is None
    state = Store(models).blob_path(digest).with_name(f"sha256-{digest[7:]}{STATE_SUFFIX}")
    kept = sum(completed for _, _, completed in json.loads(state.read_text())["parts"])
    assert 0 < kept < len(data)

    hub.budget = None
    hub.ranges.clear()
    events = ndjson(pull(hub_server, name))
    assert events[-1] == {"status": "success"}
    progress = [e for e in events if e.get("digest") == digest]
    assert progress[0]["completed"] == kept  # it starts from what the first try kept
    spans = [re.fullmatch(r"bytes=(\d+)-(\d+)", r) for r in hub.ranges]
    assert all(spans), hub.ranges
    assert sum(int(m[2]) - int(m[1]) + 1 for m in spans if m) == len(data) - kept
    blob = Store(models).blob_path(digest).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == digest[7:]
    assert not state.exists()


def test_an_unreachable_hub_is_named_in_plain_words(start_server: Any) -> None:
    closed = f"127.0.0.1:{free_port()}"
    server = start_server(HF_ENDPOINT=f"http://{closed}")
    with server.client() as client:
        response = client.post("/api/pull", json={"model": "hf.co/org/repo", "stream": False})
    assert response.status_code == 502
    assert response.json() == {"error": f"could not reach {closed}: connection refused"}
