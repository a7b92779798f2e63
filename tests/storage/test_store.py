"""The model store on a real temporary directory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from llamaport.storage import store as store_mod
from llamaport.storage.errors import (
    CorruptModel,
    DigestMismatch,
    InvalidDigest,
    InvalidModelName,
    ModelNotFound,
)
from llamaport.storage.manifest import (
    MEDIA_TYPE_ADAPTER,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_PROJECTOR,
    MEDIA_TYPE_PROMPT,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    Layer,
    Manifest,
)
from llamaport.storage.names import Name, parse_name
from llamaport.storage.settings import Settings
from llamaport.storage.store import IMPORT_CACHE_FILE, BlobRef, Store

ModelFactory = Callable[..., Manifest]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def leftovers(store: Store) -> list[str]:
    """Temp files anywhere in the store: there must never be any after a call."""
    return [p.name for p in store.root.rglob(".tmp-*")]


# -- names ---------------------------------------------------------------------


def test_resolve_is_case_insensitive(store: Store, add_model: ModelFactory) -> None:
    add_model("smollm2:135m")
    assert store.resolve("SMOLLM2:135M") == parse_name("smollm2:135m")
    assert store.resolve("SmolLM2:135m").model == "smollm2"
    assert store.resolve("registry.ollama.ai/library/smollm2:135m").tag == "135m"


def test_resolve_prefers_exact_case(store: Store, add_model: ModelFactory) -> None:
    add_model("Mixed:Tag")
    add_model("mixed:tag", weights=b"other")
    if len(store.names()) == 1:
        pytest.skip("case-insensitive filesystem")
    assert store.resolve("Mixed:Tag").model == "Mixed"
    assert store.resolve("mixed:tag").model == "mixed"


def test_resolve_missing_carries_request_string(store: Store, add_model: ModelFactory) -> None:
    add_model("smollm2:135m")
    with pytest.raises(ModelNotFound) as info:
        store.resolve("SmolLM2:360M")
    assert info.value.name == "SmolLM2:360M"
    assert str(info.value) == "model 'SmolLM2:360M' not found"


def test_resolve_invalid_name(store: Store) -> None:
    with pytest.raises(InvalidModelName):
        store.resolve("../etc/passwd")


def test_names_ignore_strays(store: Store, add_model: ModelFactory) -> None:
    add_model("a:1")
    manifests = store.root / "manifests"
    (manifests / "registry.ollama.ai" / "library" / "a" / ".tmp-123").write_text("{}")
    (manifests / "too" / "shallow").mkdir(parents=True)
    (manifests / "too" / "shallow" / "x").write_text("{}")
    (manifests / "h" / "n" / "m" / "t" / "deep").mkdir(parents=True)
    assert store.names() == [parse_name("a:1")]


# -- loading -------------------------------------------------------------------


def test_get_reads_every_layer(store: Store, add_model: ModelFactory) -> None:
    manifest = add_model(
        "Family/Model:Q4",
        weights=b"weights",
        config={"model_format": "gguf", "model_family": "llama", "file_type": "Q4_0"},
        extra_layers=[
            (MEDIA_TYPE_ADAPTER, b"lora"),
            (MEDIA_TYPE_PROJECTOR, b"mmproj"),
            (MEDIA_TYPE_TEMPLATE, b"{{ .Prompt }}"),
            (MEDIA_TYPE_SYSTEM, "Be brief. ✓".encode()),
            (MEDIA_TYPE_PARAMS, b'{"stop":["<|eot_id|>"],"temperature":0.6}'),
            (MEDIA_TYPE_MESSAGES, b'[{"role":"user","content":"hi"}]'),
            (MEDIA_TYPE_LICENSE, b"MIT"),
            (MEDIA_TYPE_LICENSE, b"Apache"),
        ],
    )
    record = store.get("family/model:q4")
    path = store.root / "manifests/registry.ollama.ai/Family/Model/Q4"
    assert record.name == Name("registry.ollama.ai", "Family", "Model", "Q4")
    assert record.short_name == "Family/Model:Q4"
    assert record.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.size == manifest.size == sum(layer.size for layer in manifest.all_layers())
    assert record.model_path == store.root / f"blobs/sha256-{sha(b'weights')[7:]}"
    assert record.adapters == [store.blob_path(sha(b"lora"))]
    assert record.projectors == [store.blob_path(sha(b"mmproj"))]
    assert record.template == "{{ .Prompt }}"
    assert record.system == "Be brief. ✓"
    assert record.params == {"stop": ["<|eot_id|>"], "temperature": 0.6}
    assert record.messages == [{"role": "user", "content": "hi"}]
    assert record.license == ["MIT", "Apache"]
    assert record.config == {"model_format": "gguf", "model_family": "llama", "file_type": "Q4_0"}
    assert record.manifest == manifest
    assert record.modified_at.tzinfo is not None
    assert record.modified_at.timestamp() == pytest.approx(path.stat().st_mtime, abs=1e-5)


def test_get_minimal_model_defaults(store: Store, add_model: ModelFactory) -> None:
    add_model("m")
    record = store.get("m")
    assert (record.template, record.system, record.params) == (None, None, {})
    assert (record.messages, record.license, record.adapters, record.projectors) == ([], [], [], [])


def test_legacy_prompt_layer_is_the_template(store: Store, add_model: ModelFactory) -> None:
    add_model("old", extra_layers=[(MEDIA_TYPE_PROMPT, b"[INST] {{ .Prompt }}")])
    assert store.get("old").template == "[INST] {{ .Prompt }}"


def test_missing_blob_is_named(store: Store, add_model: ModelFactory) -> None:
    add_model("m", extra_layers=[(MEDIA_TYPE_SYSTEM, b"sys")])
    store.blob_path(sha(b"sys")).unlink()
    with pytest.raises(CorruptModel, match=sha(b"sys")):
        store.get("m")


def test_a_kept_record_follows_its_manifest(store: Store, add_model: ModelFactory) -> None:
    """Records are kept between reads (a request reads its model's); a rewritten,
    broken or removed model is still seen at the next read."""
    add_model("m", extra_layers=[(MEDIA_TYPE_SYSTEM, b"one")])
    first = store.get("m")
    assert store.get("m") is first
    add_model("m", extra_layers=[(MEDIA_TYPE_SYSTEM, b"two")])
    assert store.get("m").system == "two"
    store.blob_path(sha(b"two")).unlink()
    with pytest.raises(CorruptModel, match=sha(b"two")):
        store.get("m")
    add_model("m", extra_layers=[(MEDIA_TYPE_SYSTEM, b"two")])
    assert store.get("m").system == "two"
    store.delete("m")
    with pytest.raises(ModelNotFound):
        store.get("m")
    add_model("M")
    assert store.get("m").name.model == "M"


@pytest.mark.parametrize(
    ("media_type", "data"),
    [(MEDIA_TYPE_PARAMS, b"[1]"), (MEDIA_TYPE_PARAMS, b"{"), (MEDIA_TYPE_MESSAGES, b'{"a":1}')],
    ids=["params-not-object", "params-bad-json", "messages-not-list"],
)
def test_malformed_json_layers(
    store: Store, add_model: ModelFactory, media_type: str, data: bytes
) -> None:
    add_model("m", extra_layers=[(media_type, data)])
    with pytest.raises(CorruptModel):
        store.get("m")


def test_list_newest_first_and_skips_broken(
    store: Store, add_model: ModelFactory, caplog: pytest.LogCaptureFixture
) -> None:
    for i, name in enumerate(["old:1", "new:1", "mid:1"]):
        add_model(name, weights=name.encode())
        os.utime(store.manifest_path(parse_name(name)), (1000 + i, [1000, 3000, 2000][i]))
    add_model("gone:1", weights=b"gone")
    store.blob_path(sha(b"gone")).unlink()
    broken = store.root / "manifests/registry.ollama.ai/library/broken/1"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="llamaport.storage.store"):
        records = store.list()
    assert [r.short_name for r in records] == ["new:1", "mid:1", "old:1"]
    assert records[0].modified_at == datetime.fromtimestamp(3000).astimezone()
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "gone:1" in warned and "broken:1" in warned


def test_list_empty_store(tmp_path: Path) -> None:
    assert Store(tmp_path / "nothing-here").list() == []


# -- manifests -----------------------------------------------------------------


def test_write_manifest_modes_and_bytes(store: Store, add_model: ModelFactory) -> None:
    manifest = add_model("h:5000/ns/m:t")
    path = store.root / "manifests/h:5000/ns/m/t"
    assert path.read_bytes() == manifest.to_json()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o755 == 0o755
    assert leftovers(store) == []


def test_write_manifest_requires_blobs(store: Store) -> None:
    missing = sha(b"never written")
    manifest = Manifest(
        config=Layer(MEDIA_TYPE_CONFIG, missing, 1), layers=[Layer(MEDIA_TYPE_MODEL, missing, 1)]
    )
    with pytest.raises(CorruptModel, match=missing):
        store.write_manifest(parse_name("m"), manifest)
    assert not store.manifest_path(parse_name("m")).exists()


def test_write_manifest_bytes_keeps_registry_bytes(store: Store, add_model: ModelFactory) -> None:
    manifest = add_model("src")
    pretty = json.dumps(manifest.to_dict(), indent=3).encode()
    store.write_manifest_bytes(parse_name("pulled"), pretty)
    assert store.get("pulled").digest == hashlib.sha256(pretty).hexdigest()


def test_copy_and_delete(store: Store, add_model: ModelFactory) -> None:
    add_model("base", weights=b"shared", extra_layers=[(MEDIA_TYPE_SYSTEM, b"only-base")])
    add_model("other", weights=b"shared")
    copied = store.copy("BASE", "backup/base:v1")
    assert copied == parse_name("backup/base:v1")
    assert store.get("backup/base:v1").digest == store.get("base").digest
    assert store.delete("Base") == parse_name("base")
    assert store.has_blob(sha(b"only-base"))  # still used by the copy
    store.delete("backup/base:v1")
    assert not store.has_blob(sha(b"only-base"))
    assert store.has_blob(sha(b"shared"))  # still used by "other"
    assert not (store.root / "manifests/registry.ollama.ai/backup").exists()
    with pytest.raises(ModelNotFound):
        store.delete("base")
    with pytest.raises(ModelNotFound):
        store.copy("nope", "x")
    with pytest.raises(InvalidModelName):
        store.copy("other", "bad/../name")


# -- blobs ---------------------------------------------------------------------


def test_write_blob_bytes(store: Store) -> None:
    ref = store.write_blob_bytes(b"hello")
    assert ref == BlobRef(sha(b"hello"), 5)
    path = store.blob_path(ref.digest)
    assert path.read_bytes() == b"hello"
    assert path.name == f"sha256-{hashlib.sha256(b'hello').hexdigest()}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert store.has_blob(ref.digest)
    assert store.has_blob(ref.digest.replace(":", "-").upper().replace("SHA", "sha"))
    assert store.write_blob_bytes(b"hello", ref.digest) == ref
    assert leftovers(store) == []


def test_digest_mismatch_discards(store: Store) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as info:
        store.write_blob_bytes(b"hello", wrong)
    assert str(info.value) == f'digest mismatch, expected "{wrong}", got "{sha(b"hello")}"'
    assert not store.has_blob(sha(b"hello"))
    assert not store.has_blob(wrong)
    assert leftovers(store) == []


def test_invalid_expected_digest_is_refused_first(store: Store) -> None:
    with pytest.raises(InvalidDigest):
        store.write_blob_bytes(b"x", "sha256:../../etc")
    with pytest.raises(InvalidDigest):
        store.has_blob("md5:abc")
    assert not (store.root / "blobs").exists()


def test_large_stream_is_hashed_in_chunks(store: Store, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    with src.open("rb") as handle:
        ref = store.write_blob_stream(handle, sha(data))
    assert ref == BlobRef(sha(data), len(data))
    assert store.blob_path(ref.digest).read_bytes() == data


@pytest.mark.parametrize("link", [False, True], ids=["copy", "link"])
def test_import_blob_file(store: Store, tmp_path: Path, link: bool) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"GGUF" + b"\0" * 100)
    ref = store.import_blob_file(src, link=link)
    assert ref == BlobRef(sha(src.read_bytes()), 104)
    blob = store.blob_path(ref.digest)
    assert blob.read_bytes() == src.read_bytes()
    assert (blob.stat().st_ino == src.stat().st_ino) is link
    cache = json.loads((store.root / IMPORT_CACHE_FILE).read_text())
    assert cache[str(src.resolve())]["digest"] == ref.digest
    assert leftovers(store) == []


def test_import_uses_cache_until_source_changes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"first")
    first = store.import_blob_file(src, link=True)

    def no_hashing(*args: object, **kwargs: object) -> BlobRef:
        raise AssertionError("re-hashed an unchanged file")

    monkeypatch.setattr(store_mod, "hash_file", no_hashing)
    monkeypatch.setattr(store_mod, "stream_into", no_hashing)
    assert store.import_blob_file(src, link=True) == first
    monkeypatch.undo()
    src.unlink()
    src.write_bytes(b"second")
    second = store.import_blob_file(src, link=True)
    assert second == BlobRef(sha(b"second"), 6)


def test_import_expected_digest(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"content")
    with pytest.raises(DigestMismatch):
        store.import_blob_file(src, "sha256:" + "1" * 64)
    with pytest.raises(DigestMismatch):
        store.import_blob_file(src, "sha256:" + "1" * 64, link=True)
    assert not store.has_blob(sha(b"content"))
    assert store.import_blob_file(src, sha(b"content")).digest == sha(b"content")
    assert leftovers(store) == []


def test_corrupt_import_cache_is_ignored(store: Store, tmp_path: Path) -> None:
    store.root.mkdir(parents=True)
    (store.root / IMPORT_CACHE_FILE).write_text("[not, json")
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    assert store.import_blob_file(src).digest == sha(b"abc")


def test_from_settings(tmp_path: Path) -> None:
    settings = Settings(models=tmp_path / "m")
    assert Store.from_settings(settings).root == tmp_path / "m"
