"""Property tests for the GGUF header validator (hypothesis).

A GGUF reaches the reader from clients (a blob upload, ``FROM ./file.gguf``),
so arbitrary bytes, and real headers with bytes changed, must give a parsed
header or :class:`InvalidGGUF`, never another exception, in bounded time.
The small file is written by ``gguf.GGUFWriter`` with every value type; the
real one is the embedded model's header, over a sparse file of its size so
the tensor-extent check still holds.
"""

from __future__ import annotations

import contextlib
import struct
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llamaport.storage._gguf_reader import StringArray, _shortest_f32, parse_gguf
from llamaport.storage.embedded import embedded_gguf_path
from llamaport.storage.errors import InvalidGGUF

_SECONDS = 5.0
_V3_LE, _V3_BE = struct.pack("<I", 3), struct.pack(">I", 3)
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("u32", 7)
    writer.add_int64("i64", -7)
    writer.add_float32("f32", 0.5)
    writer.add_bool("flag", True)
    writer.add_string("text", "hello")
    writer.add_array("ints", [1, 2, 3])
    writer.add_array("words", ["a", "bc"])
    writer.add_tensor("weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _parses_or_refuses(path: Path, data: bytes, size: int | None = None) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.truncate(max(size or 0, len(data)))
    start = time.monotonic()
    with contextlib.suppress(InvalidGGUF):
        parse_gguf(path)
    assert time.monotonic() - start < _SECONDS


_EDITS = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=6)


def _edited(data: bytes, edits: list[tuple[int, int]], span: int) -> bytes:
    out = bytearray(data)
    for where, value in edits:
        out[where % span] = value
    return bytes(out)


@settings(max_examples=400, deadline=None, suppress_health_check=_HEALTH)
@given(edits=_EDITS, cut=st.none() | st.integers(0, 1 << 16))
def test_edited_small_files_parse_or_are_invalid(
    small_gguf: bytes, tmp_path: Path, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = _edited(small_gguf, edits, len(small_gguf))
    _parses_or_refuses(tmp_path / "edited.gguf", data if cut is None else data[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=_HEALTH)
@given(
    st.one_of(
        st.binary(max_size=256),
        st.tuples(
            st.just(b"GGUF"),
            st.sampled_from([b"\x03\x00\x00\x00", b"\x00\x00\x00\x03"]),
            st.binary(),
        ).map(b"".join),
    )
)
def test_any_bytes_parse_or_are_invalid(tmp_path: Path, data: bytes) -> None:
    _parses_or_refuses(tmp_path / "bytes.gguf", data)


@pytest.fixture(scope="module")
def real_header() -> tuple[bytes, int]:
    path = embedded_gguf_path()
    assert path is not None
    offset = parse_gguf(path).data_offset
    with path.open("rb") as handle:
        return handle.read(offset), path.stat().st_size


@settings(max_examples=40, deadline=None, suppress_health_check=_HEALTH)
@given(edits=_EDITS, early=st.booleans())
def test_edited_real_headers_parse_or_are_invalid(
    real_header: tuple[bytes, int], tmp_path: Path, edits: list[tuple[int, int]], early: bool
) -> None:
    """Edits land in the counts and first keys (``early``) or anywhere in the header."""
    header, size = real_header
    data = _edited(header, edits, 4096 if early else len(header))
    _parses_or_refuses(tmp_path / "real.gguf", data, size)


def test_deeply_nested_arrays_are_invalid(tmp_path: Path) -> None:
    """Found by review of the reader under these tests: arrays of arrays nested
    thousands deep raised RecursionError instead of InvalidGGUF."""
    depth = 5000
    key = b"deep"
    nested = struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)
    data = (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<I", 9)
        + nested
    )
    path = tmp_path / "deep.gguf"
    path.write_bytes(data)
    with pytest.raises(InvalidGGUF) as caught:
        parse_gguf(path)
    assert "nested" in caught.value.detail


@settings(max_examples=2000)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_float32_metadata_reads_as_numpy_prints_it(bits: int) -> None:
    """The reader prints float32 values without numpy (importing it cost the first
    request 0.1 s): the same shortest round-trip digits as ``str(np.float32(x))``."""
    value = np.array([bits], dtype=np.uint32).view(np.float32)[0]
    assume(np.isfinite(value))
    assert _shortest_f32(float(value)) == float(str(value))


@settings(max_examples=60, deadline=None, suppress_health_check=_HEALTH)
@given(
    words=st.lists(
        st.text(st.characters(exclude_categories=["Cs"]), max_size=12), min_size=60, max_size=150
    ),
    index=st.integers(-200, 200),
)
def test_string_arrays_read_back_whole(tmp_path: Path, words: list[str], index: int) -> None:
    """A string array reads back as the strings written, whether decoded at once
    (short) or item by item (a vocabulary's length: :class:`StringArray`)."""
    path = tmp_path / "words.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("words", words)
    writer.add_uint32("after", 7)  # the array's end is found exactly
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    kv = parse_gguf(path).kv
    got = kv["words"]
    assert isinstance(got, StringArray if len(words) > 64 else list)
    assert got == words and list(got) == words and len(got) == len(words)
    assert got[index:] == words[index:] and got[:index] == words[:index]
    if -len(words) <= index < len(words):
        assert got[index] == words[index]
    else:
        with pytest.raises(IndexError):
            got[index]
    assert kv["after"] == 7
