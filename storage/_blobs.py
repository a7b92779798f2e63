"""Content-addressed blob writing: hash while copying, then rename into place.

A blob only ever appears under its final ``sha256-<hex>`` name once its bytes
are complete and verified, because every write goes to a temporary file in
``blobs/`` and is moved with ``os.replace``. Readers therefore never see a
half-written blob, and a crash leaves only a ``.tmp-*`` file behind.

:class:`ImportCache` remembers the digest of files imported from outside the
store, keyed by (path, size, mtime, inode), so the embedded model is hashed
once per install rather than on every server start.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from llamaport.storage.errors import BlobTooLarge, DigestMismatch, InsufficientStorage

__all__ = [
    "CHUNK_SIZE",
    "BlobRef",
    "ImportCache",
    "Readable",
    "atomic_write_bytes",
    "check_free_space",
    "hash_file",
    "link_into",
    "stream_into",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
_TEMP_PREFIX = ".tmp-"
_LINK_FALLBACK_ERRNOS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
)


class Readable(Protocol):
    """Anything with ``read(size)`` returning ``b""`` at the end: a file, or an
    adapter over a request body."""

    def read(self, size: int, /) -> bytes: ...


class BlobRef(NamedTuple):
    """A stored blob: ``digest`` is ``sha256:<hex>``, ``size`` in bytes."""

    digest: str
    size: int


def _sha256(hasher: Any) -> str:
    return f"sha256:{hasher.hexdigest()}"


def hash_file(path: Path) -> BlobRef:
    """Stream ``path`` through sha256 in 1 MiB chunks."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return BlobRef(_sha256(hasher), size)


@contextlib.contextmanager
def _temp_in(directory: Path) -> Iterator[Path]:
    """A temp path in ``directory`` that is removed unless the caller renamed it."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def check_free_space(directory: Path, needed: int) -> None:
    """Raise :class:`InsufficientStorage` unless ``needed`` bytes fit in ``directory``."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise InsufficientStorage(free, needed)


def _copy_hashing(stream: Readable, out: BinaryIO, limit: int) -> tuple[Any, int]:
    """Copy ``stream`` to ``out`` through sha256; more than ``limit`` bytes (when
    positive) raises :class:`BlobTooLarge`."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        size += len(chunk)
        if 0 < limit < size:
            raise BlobTooLarge(limit)
        hasher.update(chunk)
        out.write(chunk)
    return hasher, size


def stream_into(
    blobs: Path,
    stream: Readable,
    expected: str | None,
    final_for: Callable[[str], Path],
    limit: int = 0,
) -> BlobRef:
    """Copy ``stream`` into ``blobs`` under its digest, verifying ``expected``.

    ``final_for(digest) -> Path`` names the destination (the store's validated
    ``blob_path``). On a mismatch the temp file is deleted and
    ``DigestMismatch`` raised; nothing is left under a blob name. ``limit``
    (bytes, 0 for none) and a full disk end the copy the same way.
    """
    with _temp_in(blobs) as temp:
        try:
            with temp.open("wb") as out:
                hasher, size = _copy_hashing(stream, out, limit)
        except OSError as exc:  # closing flushes too, so a full disk can show here
            if exc.errno != errno.ENOSPC:
                raise
            raise InsufficientStorage(shutil.disk_usage(blobs).free) from None
        got = _sha256(hasher)
        if expected is not None and got != expected:
            raise DigestMismatch(expected, got)
        temp.chmod(0o644)
        os.replace(temp, final_for(got))
    return BlobRef(got, size)


def link_into(src: Path, final: Path) -> bool:
    """Hard-link ``src`` to ``final`` atomically; False where links are impossible.

    The caller has already verified the content. Errors other than "cannot
    link here" (other filesystem, no permission, no support) propagate.
    """
    with _temp_in(final.parent) as temp:
        temp.unlink()
        try:
            os.link(src, temp)
        except OSError as exc:
            if exc.errno in _LINK_FALLBACK_ERRNOS:
                return False
            raise
        os.replace(temp, final)
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temp file and rename; mode 0644."""
    with _temp_in(path.parent) as temp:
        with temp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temp.chmod(0o644)
        os.replace(temp, path)


class ImportCache:
    """Digests of imported source files, persisted as JSON under the store root.

    Only a hint: a stale or corrupt cache costs one re-hash, never a wrong
    blob, because an entry is trusted only while size, mtime and inode match
    and the blob it names still exists with that size.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def _key(src: Path) -> str:
        return str(src.resolve())

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def lookup(self, src: Path, stat: os.stat_result) -> str | None:
        entry = self._load().get(self._key(src))
        if not isinstance(entry, dict):
            return None
        fingerprint = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        if entry.get("fingerprint") != fingerprint:
            return None
        digest = entry.get("digest")
        return digest if isinstance(digest, str) else None

    def remember(self, src: Path, stat: os.stat_result, digest: str) -> None:
        data = self._load()
        data[self._key(src)] = {
            "fingerprint": [stat.st_size, stat.st_mtime_ns, stat.st_ino],
            "digest": digest,
        }
        try:
            atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        except OSError as exc:
            log.warning("could not save import cache %s: %s", self.path, exc)
