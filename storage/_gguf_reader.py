"""Read the header of a GGUF file (metadata and tensor index), never the weights.

``gguf.GGUFReader`` builds a numpy view per array element and takes 2-4 s on
the 98 MB embedded model, which ``/api/show`` and start-up cannot afford. This
reader walks the same layout with ``struct`` over a read-only ``mmap`` (about
0.05 s for the same file) and takes type tables from the ``gguf`` package's
``constants`` module alone (:func:`_gguf_constants`): the package itself
imports numpy.

Every count and length is checked against the file size before it is used, so
a hostile or truncated file raises ``InvalidGGUF`` instead of allocating or
reading past the end.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import mmap
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, overload

from llamaport.storage.errors import InvalidGGUF

_F32 = struct.Struct("<f")


@functools.cache
def _gguf_constants() -> ModuleType:
    """The ``gguf`` package's ``constants`` module (the format's type table and
    default alignment), executed alone: ``import gguf`` runs the package's
    ``__init__``, which imports numpy and every reader and writer, 0.12 s of
    the first request after ``serve`` starts against 0.01 s for this module.
    It imports nothing but the standard library, and is the same file."""
    package = importlib.util.find_spec("gguf")
    assert package is not None and package.origin is not None, "gguf is a dependency"
    spec = importlib.util.spec_from_file_location(
        "llamaport._gguf_constants", Path(package.origin).with_name("constants.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


__all__ = ["RawGGUF", "RawTensor", "StringArray", "parse_gguf"]

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_MAX_DIMS = 8
_MAX_NESTING = 16
"""Arrays of arrays deeper than this are refused (real files nest one or two deep)."""
_MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, 1-byte key, type, 1-byte value
_MIN_TENSOR_BYTES = 8 + 1 + 4 + 4 + 8  # name length, 1-byte name, n_dims, type, offset

# GGUF value type -> (struct code, size); STRING (8) and ARRAY (9) are handled apart.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("B", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
_FLOAT32 = 6
_BOOL = 7
_STRING = 8
_ARRAY = 9
_EAGER_STRINGS = 64
"""String arrays up to this long are decoded as they are read; longer ones
(a vocabulary, its merges) become a :class:`StringArray`."""


@dataclass(frozen=True)
class RawTensor:
    """One entry of the tensor index; ``type_id`` is a ggml type number."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def type_name(self) -> str:
        try:
            return str(_gguf_constants().GGMLQuantizationType(self.type_id).name)
        except ValueError:
            return "unknown"


@dataclass(frozen=True)
class RawGGUF:
    """Everything in a GGUF file except the tensor data."""

    version: int
    kv: dict[str, Any]
    tensors: tuple[RawTensor, ...]
    alignment: int
    data_offset: int


def _shortest_f32(value: float) -> float:
    """The float32 as Go prints it (``1e-05``, not ``9.999999747378752e-06``): the
    fewest significant digits that read back as the same float32 (at most 9)."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 10):
        shortest = float(f"{value:.{digits}g}")
        with contextlib.suppress(OverflowError):  # rounded up past float32's range
            if _F32.unpack(_F32.pack(shortest))[0] == value:
                return shortest
    return value


class StringArray(Sequence[str]):
    """A long GGUF string array, each item decoded when it is read.

    Decoding a vocabulary's 49,152 tokens and 48,900 merges took 0.06-0.1 s of
    the first request for a model, which reads the header before loading it,
    while only ``/api/show`` with ``verbose`` lists them. The raw bytes are
    kept (length prefixes included, about a third of the decoded lists'
    memory) with each item's start; equal to any sequence of the same strings.
    """

    __slots__ = ("_data", "_starts")

    def __init__(self, data: bytes, starts: array[int]) -> None:
        self._data = data
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self._starts)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("string array index out of range")
        end = self._starts[index + 1] - 8 if index + 1 < count else len(self._data)
        return self._data[self._starts[index] : end].decode("utf-8", errors="replace")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self._starts)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StringArray):
            return self._data == other._data
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the list it stands for

    def __repr__(self) -> str:
        return f"StringArray({len(self)} strings)"


class _Cursor:
    """A bounds-checked position in the mapped file."""

    def __init__(self, buf: mmap.mmap, endian: str) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.endian = endian
        self._u64 = struct.Struct(endian + "Q")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise InvalidGGUF(f"truncated while reading {what} at byte {self.pos}")

    def unpack(self, code: str, size: int, what: str) -> Any:
        self.need(size, what)
        (value,) = struct.unpack_from(self.endian + code, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        value: int = self.unpack("I", 4, what)
        return value

    def u64(self, what: str) -> int:
        value: int = self.unpack("Q", 8, what)
        return value

    def string(self, what: str) -> str:
        length = self.u64(what)
        self.need(length, what)
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, type_id: int, what: str) -> Any:
        if type_id == _STRING:
            return self.string(what)
        if type_id == _ARRAY:
            return self.array(what)
        if type_id not in _SCALARS:
            raise InvalidGGUF(f"unknown value type {type_id} in {what}")
        code, size = _SCALARS[type_id]
        value = self.unpack(code, size, what)
        if type_id == _BOOL:
            return value != 0
        if type_id == _FLOAT32:
            return _shortest_f32(value)
        return value

    def array(self, what: str, depth: int = 0) -> list[Any] | StringArray:
        item_type = self.u32(what)
        count = self.u64(what)
        if item_type == _STRING:
            return self._strings(count, what)
        if item_type == _ARRAY:
            if depth >= _MAX_NESTING:
                raise InvalidGGUF(f"arrays nested more than {_MAX_NESTING} deep in {what}")
            self.need(count * 12, what)
            return [self.array(what, depth + 1) for _ in range(count)]
        if item_type not in _SCALARS:
            raise InvalidGGUF(f"unknown array item type {item_type} in {what}")
        code, size = _SCALARS[item_type]
        self.need(count * size, what)
        if item_type == _FLOAT32:
            raw = self.buf[self.pos : self.pos + count * size]
            import numpy as np

            floats = np.frombuffer(raw, dtype=self.endian + "f4", count=count)
            items: list[Any] = [float(text) for text in floats.astype(str)]
        else:
            items = list(struct.unpack_from(f"{self.endian}{count}{code}", self.buf, self.pos))
            if item_type == _BOOL:
                items = [item != 0 for item in items]
        self.pos += count * size
        return items

    def _strings(self, count: int, what: str) -> list[str] | StringArray:
        self.need(count * 8, what)
        buf, begin, end, unpack = self.buf, self.pos, self.end, self._u64.unpack_from
        pos = begin
        starts = array("Q")
        for _ in range(count):
            if pos + 8 > end:
                raise InvalidGGUF(f"truncated while reading {what}")
            (length,) = unpack(buf, pos)
            pos += 8
            if pos + length > end:
                raise InvalidGGUF(f"truncated while reading {what}")
            starts.append(pos - begin)
            pos += length
        self.pos = pos
        strings = StringArray(buf[begin:pos], starts)
        return strings if count > _EAGER_STRINGS else list(strings)


def _read_header(cur: _Cursor) -> tuple[int, int, int]:
    version = cur.u32("version")
    if version not in _SUPPORTED_VERSIONS:
        raise InvalidGGUF(f"unsupported GGUF version {version}")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("metadata count")
    if n_tensors * _MIN_TENSOR_BYTES + n_kv * _MIN_KV_BYTES > cur.end - cur.pos:
        raise InvalidGGUF(f"header claims {n_tensors} tensors and {n_kv} keys; file too small")
    return version, n_tensors, n_kv


def _read_tensor(cur: _Cursor) -> RawTensor:
    name = cur.string("tensor name")
    n_dims = cur.u32(f"dimensions of {name}")
    if n_dims > _MAX_DIMS:
        raise InvalidGGUF(f"tensor {name} claims {n_dims} dimensions")
    shape = tuple(cur.u64(f"shape of {name}") for _ in range(n_dims))
    type_id = cur.u32(f"type of {name}")
    offset = cur.u64(f"offset of {name}")
    return RawTensor(name=name, shape=shape, type_id=type_id, offset=offset)


def _check_tensor_data(tensors: tuple[RawTensor, ...], data_offset: int, size: int) -> None:
    """Refuse files whose weights were cut off: every tensor must end inside the file."""
    gguf = _gguf_constants()
    for tensor in tensors:
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.type_id)]
        except (ValueError, KeyError):
            continue
        end = data_offset + tensor.offset + tensor.n_elements // block * type_size
        if end > size:
            raise InvalidGGUF(f"tensor {tensor.name} ends at byte {end}, past the file end {size}")


def _parse(buf: mmap.mmap) -> RawGGUF:
    if buf[:4] != _MAGIC:
        raise InvalidGGUF("bad magic")
    # A byte-swapped version (low 16 bits zero) marks a big-endian file.
    (probe,) = struct.unpack_from("<I", buf, 4)
    cur = _Cursor(buf, ">" if probe & 0xFFFF == 0 else "<")
    cur.pos = 4
    version, n_tensors, n_kv = _read_header(cur)
    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string("metadata key")
        kv[key] = cur.value(cur.u32(f"type of {key}"), key)
    tensors = tuple(_read_tensor(cur) for _ in range(n_tensors))
    alignment = kv.get("general.alignment", _gguf_constants().GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidGGUF(f"bad general.alignment {alignment!r}")
    data_offset = -(-cur.pos // alignment) * alignment
    _check_tensor_data(tensors, data_offset, cur.end)
    return RawGGUF(version, kv, tensors, alignment, data_offset)


def parse_gguf(path: Path) -> RawGGUF:
    """Parse the GGUF header of ``path``.

    Raises ``InvalidGGUF`` for content that is not a whole GGUF file and lets
    ``OSError`` through for files that cannot be opened, so the caller can say
    which it was.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if size < 4 + 4 + 8 + 8:
            raise InvalidGGUF(f"file is only {size} bytes")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return _parse(buf)
            except (struct.error, OverflowError, MemoryError) as exc:
                raise InvalidGGUF(f"malformed header: {exc}") from None
