"""GGUF header facts, checked on files written by the reference ``gguf.GGUFWriter``."""

from __future__ import annotations

import dataclasses
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import pytest

from llamaport.storage.errors import CorruptModel, InvalidGGUF
from llamaport.storage.gguf_meta import (
    GGUFInfo,
    TensorInfo,
    capabilities,
    config_for_gguf,
    human_number,
    read_gguf_info,
)

GGUFFactory = Callable[..., Path]


def test_tiny_info_fields(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    assert info.architecture == "llama"
    assert info.context_length == 2048
    assert info.embedding_length == 64
    assert info.parameter_count == 48
    assert info.parameter_size == "48"
    assert info.file_type == "Q4_K_M"
    assert info.chat_template is not None and info.chat_template.startswith("{% for m in")
    assert info.bos_token == "<s>"
    assert info.eos_token == "</s>"
    assert info.pooling_type is None
    assert info.families == ("llama",)
    assert info.general_type == "model"
    assert info.has_vision is False
    assert info.tensors == (
        TensorInfo("a", "F32", (8, 4)),
        TensorInfo("b", "F16", (8, 2)),
    )


def test_model_info_matches_api_show(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    assert info.model_info == {
        "general.architecture": "llama",
        "general.file_type": 15,
        "general.parameter_count": 48,
        "general.tags": ["x", "y"],
        "llama.attention.layer_norm_rms_epsilon": 1e-05,
        "llama.block_count": 2,
        "llama.context_length": 2048,
        "llama.embedding_length": 64,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": [],
    }
    assert list(info.model_info) == sorted(info.model_info)
    verbose = info.model_info_verbose
    assert verbose["tokenizer.ggml.tokens"] == ["<unk>", "<s>", "</s>", "a", "b", "c", "d"]
    assert "general.name" not in verbose
    assert "tokenizer.chat_template" not in verbose


def test_matches_reference_reader(tiny_gguf: Path) -> None:
    """Our header reader and ``gguf.GGUFReader`` agree on every key."""
    reference = gguf.GGUFReader(tiny_gguf)
    ours = read_gguf_info(tiny_gguf).model_info_verbose
    for key, field in reference.fields.items():
        if key.startswith("GGUF.") or key in ("general.name", "tokenizer.chat_template"):
            continue
        value: Any = field.contents()
        assert ours[key] == pytest.approx(value), key
    assert len(reference.tensors) == len(read_gguf_info(tiny_gguf).tensors)


def test_big_endian_file(make_gguf: GGUFFactory, tiny_gguf: Path) -> None:
    big = read_gguf_info(make_gguf(endian=gguf.GGUFEndian.BIG))
    little = read_gguf_info(tiny_gguf)
    assert big.model_info == little.model_info
    assert big.bos_token == "<s>"


@pytest.mark.parametrize(
    ("file_type", "want"),
    [(0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (7, "Q8_0"), (18, "Q6_K"), (32, "BF16")],
    ids=lambda v: str(v),
)
def test_file_type_names(make_gguf: GGUFFactory, file_type: int, want: str) -> None:
    assert read_gguf_info(make_gguf(file_type=file_type)).file_type == want


@pytest.mark.parametrize("file_type", [None, 999], ids=["absent", "unknown"])
def test_file_type_falls_back_to_dominant_tensor_type(
    make_gguf: GGUFFactory, file_type: int | None
) -> None:
    assert read_gguf_info(make_gguf(file_type=file_type)).file_type == "F32"


def test_declared_parameter_count_wins(make_gguf: GGUFFactory) -> None:
    path = make_gguf(extra=lambda w: w.add_uint64("general.parameter_count", 8_030_261_248))
    info = read_gguf_info(path)
    assert info.parameter_count == 8_030_261_248
    assert info.parameter_size == "8.0B"
    assert info.model_info["general.parameter_count"] == 8_030_261_248


def test_pooling_and_vision_keys(make_gguf: GGUFFactory) -> None:
    def extra(writer: gguf.GGUFWriter) -> None:
        writer.add_uint32("llama.pooling_type", 1)
        writer.add_uint32("llama.vision.block_count", 4)

    info = read_gguf_info(make_gguf(extra=extra))
    assert info.pooling_type == 1
    assert info.has_vision is True


def test_results_are_cached_until_the_file_changes(make_gguf: GGUFFactory) -> None:
    path = make_gguf()
    first = read_gguf_info(path)
    assert read_gguf_info(path) is first
    path.write_bytes(make_gguf(file_type=3).read_bytes())
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = read_gguf_info(path)
    assert second is not first
    assert second.file_type == "Q4_1"


def _patched(path: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    out = path.with_name(f"patched-{offset}-{value}.gguf")
    out.write_bytes(bytes(data))
    return out


# Header layout: magic(4) version(u32 @4) n_tensors(u64 @8) n_kv(u64 @16) key_len(u64 @24).
CORRUPTIONS: dict[str, Callable[[Path], Path]] = {
    "bad-magic": lambda p: _patched(p, 0, "<I", int.from_bytes(b"GGML", "little")),
    "version-1": lambda p: _patched(p, 4, "<I", 1),
    "version-99": lambda p: _patched(p, 4, "<I", 99),
    "absurd-tensor-count": lambda p: _patched(p, 8, "<Q", 2**40),
    "absurd-kv-count": lambda p: _patched(p, 16, "<Q", 2**62),
    "absurd-key-length": lambda p: _patched(p, 24, "<Q", 2**50),
    "more-kv-than-present": lambda p: _patched(p, 16, "<Q", 40),
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_corrupt_headers(tiny_gguf: Path, corrupt: Callable[[Path], Path]) -> None:
    with pytest.raises(InvalidGGUF) as info:
        read_gguf_info(corrupt(tiny_gguf))
    assert str(info.value) == "not a valid GGUF file"
    assert info.value.detail


@pytest.mark.parametrize("keep", [0, 3, 20, 40, 200, 500, 700, 890, -1], ids=lambda k: f"keep-{k}")
def test_truncated_files(tiny_gguf: Path, tmp_path: Path, keep: int) -> None:
    data = tiny_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:keep])
    with pytest.raises(InvalidGGUF):
        read_gguf_info(cut)


def test_not_gguf_at_all(tmp_path: Path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("FROM llama3.2\nSYSTEM hi\n" * 10)
    with pytest.raises(InvalidGGUF):
        read_gguf_info(text)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(CorruptModel):
        read_gguf_info(tmp_path / "missing.gguf")
    with pytest.raises(CorruptModel):
        read_gguf_info(tmp_path)


HUMAN = [
    (0, "0"),
    (999, "999"),
    (1000, "1K"),
    (1001, "1K"),
    (1_000_000, "1M"),
    (125_000_000, "125M"),
    (500_500_000, "500.50M"),
    (500_550_000, "500.55M"),
    (1_000_000_000, "1B"),
    (2_800_000_000, "2.8B"),
    (2_850_000_000, "2.9B"),
    (1_000_000_000_000, "1000B"),
    (134_515_008, "134.52M"),
    (22_565_376, "22.57M"),
    (3_212_749_824, "3.2B"),
]


@pytest.mark.parametrize(("n", "text"), HUMAN, ids=[h[1] for h in HUMAN])
def test_human_number(n: int, text: str) -> None:
    assert human_number(n) == text


def _info(tiny: GGUFInfo, **changes: Any) -> GGUFInfo:
    return dataclasses.replace(tiny, **changes)


CAPABILITIES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("jinja-tools-thinking", {}, {}, ["completion", "tools", "thinking"]),
    ("no-template", {"chat_template": None}, {}, ["completion"]),
    ("jinja-plain", {"chat_template": "{{ messages }}"}, {}, ["completion"]),
    (
        "jinja-split-think",
        {"chat_template": "{{ content.split('</think>')[-1] }}"},
        {},
        ["completion", "thinking"],
    ),
    (
        "jinja-enable-thinking",
        {"chat_template": "{% if enable_thinking %}<|think|>{% endif %}"},
        {},
        ["completion", "thinking"],
    ),
    ("bert", {"architecture": "bert", "chat_template": None}, {}, ["embedding"]),
    ("pooling-no-template", {"pooling_type": 1, "chat_template": None}, {}, ["embedding"]),
    ("pooling-with-template", {"pooling_type": 1, "chat_template": "x"}, {}, ["completion"]),
    (
        "go-suffix",
        {"chat_template": None},
        {"template": "{{ .Prompt }}<FIM>{{ .Suffix }}"},
        ["completion", "insert"],
    ),
    (
        "go-tools-overrides-jinja",
        {},
        {"template": "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}"},
        ["completion", "tools"],
    ),
    ("projector", {"chat_template": None}, {"has_projector": True}, ["completion", "vision"]),
]


@pytest.mark.parametrize(
    ("changes", "kwargs", "want"), [c[1:] for c in CAPABILITIES], ids=[c[0] for c in CAPABILITIES]
)
def test_capabilities(
    tiny_gguf: Path, changes: dict[str, Any], kwargs: dict[str, Any], want: list[str]
) -> None:
    assert capabilities(_info(read_gguf_info(tiny_gguf), **changes), **kwargs) == want


def test_config_for_gguf(tiny_gguf: Path) -> None:
    config = config_for_gguf(read_gguf_info(tiny_gguf)).to_dict()
    assert config["model_format"] == "gguf"
    assert config["model_family"] == "llama"
    assert config["model_families"] == ["llama"]
    assert config["model_type"] == "48"
    assert config["file_type"] == "Q4_K_M"


def test_reading_a_header_imports_neither_numpy_nor_the_gguf_package() -> None:
    """The first request after ``serve`` starts reads its model's header; the reader
    takes only ``gguf``'s constants module, since the package's ``__init__`` imports
    numpy and its readers and writers (0.12 s against 0.01 s)."""
    code = (
        "import sys\n"
        "from llamaport.storage.embedded import embedded_gguf_path\n"
        "from llamaport.storage.gguf_meta import read_gguf_info\n"
        "info = read_gguf_info(embedded_gguf_path())\n"
        "assert info.architecture == 'llama', info.architecture\n"
        "print(sorted(m for m in ('numpy', 'gguf') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
