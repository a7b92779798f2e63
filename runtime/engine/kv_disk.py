"""Stored conversations' last KV state, in files that outlive the server.

When a stored conversation's turn finishes, the batcher copies its slot's
cells (``llama_state_seq_get_data``) and this module writes them, on a thread
of its own so the decode loop goes on, to ``<cache_dir>/<format>/<key>.kv``:
``format`` hashes what the state's layout depends on (llama.cpp's version,
the weights and adapters, the KV cache type, flash attention), and each file
names the identity its turn carried (the model's digest and template, see
:attr:`~llamaport.runtime.engine.wire.Submit.persist`). A later turn with the
same identity finds the file by token prefix, through the same lookup as the
host-memory cache (:meth:`PrefixCache.lookup`), so a conversation resumed
after a restart skips its prefill.

A file is written to a temporary name and renamed, so a reader never sees
half of one. One that is truncated, fails its checksum or that llama.cpp
refuses is removed and the prompt is prefilled instead. The folder is bounded
by ``capacity`` bytes across every format: least recently used files (by
modification time, touched on each restore) go first, and a file whose tokens
are a prefix of a newer one is dropped as redundant, whatever its identity: a
conversation resumed under a changed template or model leaves no stale file.

Each file also names its owner, the stored conversation whose turn wrote it
(:attr:`~llamaport.runtime.engine.wire.Submit.owner`): the tokens are the
conversation's text, so deleting the conversation removes the files it owns,
through :meth:`DiskCache.forget` in an engine (after the writes it has queued)
and :func:`forget_files` for every format.

File layout: ``MAGIC``, a little-endian u32 header length, a JSON header
(``identity``, ``owner``, ``n_tokens``, ``n_bytes``, ``crc``), the tokens as
int32, then llama.cpp's state bytes. ``crc`` is the CRC-32 of tokens and state.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import queue
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llamaport.runtime.engine.prefixes import prefixes_of

__all__ = ["DiskCache", "StoredPrefix", "forget_files", "state_format"]

MAGIC = b"LPKV1\n"
_SUFFIX = ".kv"
_MAX_HEADER = 4096
_MAX_QUEUED = 4
"""States waiting for the writer; past this a turn's state is not written (the
disk is slower than turns finish) rather than held in memory or waited for."""

log = logging.getLogger(__name__)

_State = ctypes.Array[ctypes.c_uint8]


def state_format(*parts: object) -> str:
    """A folder name for one KV state layout: the hash of what it depends on."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


@dataclass
class StoredPrefix:
    """One file's tokens and where its state lies; the bytes are read on restore."""

    tokens: list[int]
    identity: str
    owner: str
    path: Path
    size: int


class DiskCache:
    """The files of one state format under ``root``, bounded by ``capacity`` bytes."""

    def __init__(self, root: Path, fmt: str, capacity: int) -> None:
        self._root = root
        self._dir = root / fmt
        self.capacity = capacity
        self._lock = threading.Lock()
        self._index: dict[Path, StoredPrefix] = {}
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(_MAX_QUEUED)
        self._spare: bytearray | None = None
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in self._dir.glob(f".*{_SUFFIX}.*.tmp"):  # a write an engine never finished
            _unlink(path)
        for path in self._dir.glob(f"*{_SUFFIX}"):
            entry = _read_head(path)
            if entry is None:
                _unlink(path)
            else:
                self._index[path] = entry
        self._writer = threading.Thread(target=self._write_loop, daemon=True)
        self._writer.start()

    def entries(self, identity: str) -> list[StoredPrefix]:
        with self._lock:
            return self._of(identity)

    def _of(self, identity: str) -> list[StoredPrefix]:
        return [e for e in self._index.values() if e.identity == identity]

    def read(self, entry: StoredPrefix) -> _State | None:
        """The state bytes of ``entry``, or None (the file is then removed) when the
        file is gone, truncated or fails its checksum."""
        data = _read_state(entry)
        if data is None:
            self.drop(entry)
            return None
        with contextlib.suppress(OSError):
            os.utime(entry.path)
        return data

    def drop(self, entry: StoredPrefix) -> None:
        """Forget ``entry`` and remove its file (llama.cpp refused it, or it is corrupt)."""
        with self._lock:
            self._index.pop(entry.path, None)
        _unlink(entry.path)

    def write(
        self,
        identity: str,
        owner: str,
        tokens: list[int],
        size: int,
        fill: Callable[[_State], bool],
    ) -> None:
        """Have ``fill`` copy one state of ``size`` bytes into a buffer (on the
        caller's thread) and queue it for writing; returns at once.

        The buffer is the one the writer last finished with when it is large
        enough: its pages are mapped already, which is most of what a fresh
        buffer costs (8 ms instead of 28 for 23 MB on the 2-core test machine).
        """
        with self._lock:
            backing, self._spare = self._spare, None
        if backing is None or len(backing) < size:
            backing = bytearray(size)
        data = (ctypes.c_uint8 * size).from_buffer(backing)
        if not fill(data):
            self._give_back(backing)
            return
        try:
            self._queue.put_nowait(
                functools.partial(self._write, identity, owner, list(tokens), data, backing)
            )
        except queue.Full:
            log.warning(
                "kv cache: %d states wait for the disk already; one is dropped", _MAX_QUEUED
            )

    def _give_back(self, backing: bytearray) -> None:
        with self._lock:
            if self._spare is None or len(self._spare) < len(backing):
                self._spare = backing

    def forget(self, owner: str) -> None:
        """Remove ``owner``'s files on the writer's thread, after the writes queued
        before (waits for room in the queue, unlike a write)."""
        self._queue.put(functools.partial(self._forget, owner))

    def close(self) -> None:
        """Finish the jobs queued so far, then stop the writer."""
        self._queue.put(None)
        self._writer.join()

    # -- the writer thread ---------------------------------------------------

    def _write_loop(self) -> None:
        while (job := self._queue.get()) is not None:
            job()

    def _write(
        self, identity: str, owner: str, tokens: list[int], data: _State, backing: bytearray
    ) -> None:
        try:
            self._store(identity, owner, tokens, data)
        except OSError as exc:  # a full or read-only disk costs the cache, not the turn
            log.warning("kv cache: cannot write %s: %s", self._dir, exc)
        self._give_back(backing)

    def _forget(self, owner: str) -> None:
        with self._lock:
            owned = [e for e in self._index.values() if e.owner == owner]
            for entry in owned:
                del self._index[entry.path]
        for entry in owned:
            _unlink(entry.path)

    def _store(self, identity: str, owner: str, tokens: list[int], data: _State) -> None:
        if len(data) > self.capacity:
            return
        name = hashlib.sha256(identity.encode() + array.array("i", tokens).tobytes())
        path = self._dir / f"{name.hexdigest()[:32]}{_SUFFIX}"
        head, body = _encode(identity, owner, tokens, data)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(head)
                f.write(body)
                f.write(data)
            os.replace(tmp, path)
        finally:
            _unlink(tmp)
        entry = StoredPrefix(tokens, identity, owner, path, len(head) + len(body) + len(data))
        with self._lock:
            older = prefixes_of(self._index.values(), tokens)
            for old in older:
                if old.path != path:
                    self._index.pop(old.path, None)
            self._index[path] = entry
        for old in older:
            if old.path != path:
                _unlink(old.path)
        self._bound()

    def _bound(self) -> None:
        """Remove the least recently used files of every format until all fit."""
        files: list[tuple[float, int, Path]] = []
        for path in self._root.glob(f"*/*{_SUFFIX}"):
            with contextlib.suppress(OSError):
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.capacity:
                break
            with self._lock:
                self._index.pop(path, None)
            _unlink(path)
            total -= size


def _encode(identity: str, owner: str, tokens: list[int], data: _State) -> tuple[bytes, bytes]:
    body = array.array("i", tokens).tobytes()
    crc = zlib.crc32(data, zlib.crc32(body))
    header = json.dumps(
        {
            "identity": identity,
            "owner": owner,
            "n_tokens": len(tokens),
            "n_bytes": len(data),
            "crc": crc,
        }
    ).encode()
    return MAGIC + struct.pack("<I", len(header)) + header, body


def _read_head(path: Path) -> StoredPrefix | None:
    """A file's identity and tokens, or None when its header or size is wrong."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            (n,) = struct.unpack("<I", f.read(4))
            if n > _MAX_HEADER:
                return None
            head = json.loads(f.read(n))
            n_tokens, n_bytes = int(head["n_tokens"]), int(head["n_bytes"])
            body = f.read(4 * n_tokens)
            size = os.fstat(f.fileno()).st_size
        tokens = array.array("i")
        tokens.frombytes(body)
        if len(tokens) != n_tokens or size != len(MAGIC) + 4 + n + len(body) + n_bytes:
            return None
        owner = str(head.get("owner", ""))
        return StoredPrefix(tokens.tolist(), str(head["identity"]), owner, path, size)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def _read_state(entry: StoredPrefix) -> _State | None:
    """The state bytes, read once into a buffer llama.cpp reads from (no copies)."""
    try:
        with open(entry.path, "rb") as f:
            raw = bytearray(os.fstat(f.fileno()).st_size)
            if f.readinto(raw) != len(raw):
                return None
        view = memoryview(raw)
        (n,) = struct.unpack_from("<I", raw, len(MAGIC))
        start = len(MAGIC) + 4
        head = json.loads(bytes(view[start : start + n]))
        body_at = start + n
        data_at = body_at + 4 * int(head["n_tokens"])
        n_bytes = int(head["n_bytes"])
        if raw[: len(MAGIC)] != MAGIC or len(raw) != data_at + n_bytes or n_bytes <= 0:
            return None
        if view[body_at:data_at] != array.array("i", entry.tokens).tobytes():
            return None  # another file under this name since the index was read
        if zlib.crc32(view[data_at:], zlib.crc32(view[body_at:data_at])) != int(head["crc"]):
            return None
        return (ctypes.c_uint8 * n_bytes).from_buffer(raw, data_at)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def forget_files(root: Path, owner: str) -> None:
    """Remove ``owner``'s files under ``root`` (every format's folder); blocking.
    An engine running on one of the formats may still be writing one of them:
    :meth:`DiskCache.forget` there covers it."""
    if not owner:
        return
    for path in root.glob(f"*/*{_SUFFIX}"):
        entry = _read_head(path)
        if entry is not None and entry.owner == owner:
            _unlink(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
