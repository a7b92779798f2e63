"""Fixtures for the storage tests: tiny GGUF files and a populated store.

The GGUF files are written with ``gguf.GGUFWriter`` (the reference writer)
so the reader is tested against real files, not against our own encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from llamaport.storage.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MODEL,
    Layer,
    Manifest,
)
from llamaport.storage.names import Name, parse_name
from llamaport.storage.store import Store

TINY_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if tools %}{{ tools }}{% endif %}<think></think>"
)
TINY_TOKENS = ["<unk>", "<s>", "</s>", "a", "b", "c", "d"]

GGUFFactory = Callable[..., Path]


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    file_type: int | None = 15,
    template: str | None = TINY_TEMPLATE,
    endian: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE,
    extra: Callable[[gguf.GGUFWriter], None] | None = None,
) -> Path:
    """A tiny but complete GGUF: a few KVs, a 7-token vocab and two tensors.

    Tensors: ``a`` is F32 4x8 (32 elements), ``b`` is F16 2x8 (16 elements),
    so the tensor-derived parameter count is 48 and F32 holds most weights.
    """
    writer = gguf.GGUFWriter(path, arch, endianess=endian)
    writer.add_name("Tiny Test Model")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_layer_norm_rms_eps(1e-5)
    if file_type is not None:
        writer.add_file_type(file_type)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(TINY_TOKENS)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_array("general.tags", ["x", "y"])
    if extra is not None:
        extra(writer)
    writer.add_tensor("a", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.add_tensor("b", np.ones((2, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "tiny.gguf")


@pytest.fixture
def make_gguf(tmp_path: Path) -> GGUFFactory:
    """Write a variant of the tiny GGUF; keyword arguments as for ``write_gguf``."""
    counter = iter(range(1000))

    def make(**kwargs: Any) -> Path:
        return write_gguf(tmp_path / f"variant-{next(counter)}.gguf", **kwargs)

    return make


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "models")


ModelFactory = Callable[..., Manifest]


def _add_model(
    store: Store,
    name: str | Name,
    weights: bytes = b"GGUF-weights",
    extra_layers: list[tuple[str, bytes]] | None = None,
    config: dict[str, Any] | None = None,
) -> Manifest:
    parsed = parse_name(name) if isinstance(name, str) else name
    config_bytes = json.dumps(config or {"model_format": "gguf", "model_family": "llama"}).encode()
    cfg = store.write_blob_bytes(config_bytes)
    model = store.write_blob_bytes(weights)
    layers = [Layer(MEDIA_TYPE_MODEL, model.digest, model.size)]
    for media_type, data in extra_layers or []:
        ref = store.write_blob_bytes(data)
        layers.append(Layer(media_type, ref.digest, ref.size))
    manifest = Manifest(config=Layer(MEDIA_TYPE_CONFIG, cfg.digest, cfg.size), layers=layers)
    store.write_manifest(parsed, manifest)
    return manifest


@pytest.fixture
def add_model(store: Store) -> ModelFactory:
    """Write blobs and a manifest into ``store`` the way ``/api/create`` would.

    Call as ``add_model(name, weights=b"...", extra_layers=[(media_type, data)],
    config={...})``; returns the manifest written.
    """

    def add(name: str | Name, **kwargs: Any) -> Manifest:
        return _add_model(store, name, **kwargs)

    return add
