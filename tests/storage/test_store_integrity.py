"""Blob garbage collection and the integrity check run before a model loads."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llamaport.storage.errors import CorruptModel, CreateError
from llamaport.storage.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_SYSTEM,
    Layer,
    Manifest,
)
from llamaport.storage.names import parse_name
from llamaport.storage.quantize import parse_quantize_type
from llamaport.storage.store import Store

ModelFactory = Callable[..., Manifest]
STALE = time.time() - 2 * 3600


def blob(store: Store, data: bytes, *, stale: bool) -> Path:
    ref = store.write_blob_bytes(data)
    path = store.blob_path(ref.digest)
    if stale:
        os.utime(path, (STALE, STALE))
    return path


def test_collect_garbage_spares_used_and_young_blobs(store: Store, add_model: ModelFactory) -> None:
    manifest = add_model("kept", extra_layers=[(MEDIA_TYPE_SYSTEM, b"system")])
    for layer in manifest.all_layers():
        os.utime(store.blob_path(layer.digest), (STALE, STALE))
    old = blob(store, b"orphan", stale=True)
    young = blob(store, b"just uploaded", stale=False)
    temp = store.root / "blobs" / ".tmp-upload"
    temp.write_bytes(b"half")
    os.utime(temp, (STALE, STALE))
    other = store.root / "blobs" / f"sha256-{'a' * 64}-partial"
    other.write_bytes(b"a download in progress")
    os.utime(other, (STALE, STALE))
    removed = store.collect_garbage()
    assert sorted(removed) == sorted([old.name, temp.name])
    assert young.exists() and other.exists()
    assert all(store.has_blob(layer.digest) for layer in manifest.all_layers())


def test_collect_garbage_does_nothing_while_a_manifest_is_unreadable(
    store: Store, add_model: ModelFactory
) -> None:
    add_model("fine")
    broken = store.manifest_path(store.resolve("fine")).with_name("broken")
    broken.write_text("{not json")
    old = blob(store, b"orphan", stale=True)
    assert store.collect_garbage() == []
    assert old.exists()


def test_collect_garbage_on_an_empty_store(tmp_path: Path) -> None:
    assert Store(tmp_path / "none").collect_garbage() == []


def test_verify_model_finds_a_changed_blob(store: Store, add_model: ModelFactory) -> None:
    manifest = add_model("m", extra_layers=[(MEDIA_TYPE_SYSTEM, b"be nice")])
    record = store.get("m")
    system = store.blob_path(manifest.layers[1].digest)
    system.write_bytes(b"be mean")
    with pytest.raises(CorruptModel, match=f"blob {manifest.layers[1].digest} is corrupt"):
        store.verify_model(record)


def test_verify_model_needs_whole_ggufs(store: Store, tiny_gguf: Path) -> None:
    weights = store.import_blob_file(tiny_gguf)
    config = store.write_blob_bytes(json.dumps({"model_format": "gguf"}).encode())
    store.write_manifest(
        parse_name("tiny"),
        Manifest(
            config=Layer(MEDIA_TYPE_CONFIG, config.digest, config.size),
            layers=[Layer(MEDIA_TYPE_MODEL, weights.digest, weights.size)],
        ),
    )
    store.verify_model(store.get("tiny"))
    path = store.blob_path(weights.digest)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptModel, match="tiny:latest"):
        store.verify_model(store.get("tiny"))


def test_adopt_blob_file(store: Store) -> None:
    (store.root / "blobs").mkdir(parents=True)
    out = store.root / "blobs" / ".tmp-out"
    out.write_bytes(b"quantized")
    ref, existed = store.adopt_blob_file(out)
    assert not existed and not out.exists()
    assert store.blob_path(ref.digest).read_bytes() == b"quantized"
    out.write_bytes(b"quantized")
    assert store.adopt_blob_file(out) == (ref, True)
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("q4_K_M", "Q4_K_M"), ("Q4_K", "Q4_K_M"), ("q8_0", "Q8_0"), ("f16", "F16"), ("Q6_K", "Q6_K")],
)
def test_quantize_type_names(name: str, canonical: str) -> None:
    assert parse_quantize_type(name) == canonical


def test_unknown_quantize_type() -> None:
    with pytest.raises(CreateError, match=r"^unsupported quantization type IQ2_XXS - supported"):
        parse_quantize_type("IQ2_XXS")


def test_touching_a_verified_blob_keeps_it_verified(store: Store, tmp_path: Path) -> None:
    ref = store.write_blob_bytes(b"weights")
    path = store.blob_path(ref.digest)
    os.utime(path, (STALE, STALE))
    store.touch_blob(ref.digest)
    assert path.stat().st_mtime > STALE + 3600
    path.write_bytes(b"changed behind our back")
    os.utime(path, (STALE, STALE))
    with pytest.raises(CorruptModel):
        store._verify_blob(ref.digest, "m")
    store.touch_blob(f"sha256:{'0' * 64}")  # a missing blob is not an error
