"""Pulling a model: the manifest, then every blob in parallel ranged parts.

A blob being downloaded lives next to the finished ones as
``blobs/sha256-<hex>-partial`` (the file, at its final size) and
``blobs/sha256-<hex>-partial.json`` (each part's range and how much of it is
on disk). An interrupted pull therefore resumes where it stopped: the next
pull asks only for the missing bytes of each part with ``Range``. A blob
becomes ``sha256-<hex>`` only after its bytes hash to the digest; a blob that
does not is deleted with its state. The manifest is written last, atomically,
byte for byte as the registry sent it, so the model's digest is the registry's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from llamaport.storage._blobs import CHUNK_SIZE, atomic_write_bytes
from llamaport.storage.errors import CorruptModel, ModelNotFound
from llamaport.storage.manifest import MEDIA_TYPE_MANIFEST, Layer, Manifest
from llamaport.storage.names import Name
from llamaport.storage.progress import Progress, short_digest
from llamaport.storage.registry.client import RegistryClient, TransientError, retrying
from llamaport.storage.registry.errors import (
    BlobDigestMismatch,
    RegistryError,
    transport_failure,
)
from llamaport.storage.store import Store

__all__ = [
    "MAX_PARALLEL_PARTS",
    "PARTIAL_SUFFIX",
    "PART_MAX",
    "PART_MIN",
    "STATE_SUFFIX",
    "BlobSource",
    "blob_lock",
    "commit_blobs",
    "pull_blob",
    "pull_from_registry",
    "write_manifest",
]

log = logging.getLogger(__name__)

PART_MIN = 16 << 20
PART_MAX = 1000 * 1000 * 1000
PARTS_PER_BLOB = 16
MAX_PARALLEL_PARTS = 8
PARTIAL_SUFFIX = "-partial"
STATE_SUFFIX = "-partial.json"
_PROGRESS_SECONDS = 0.1
_ACCEPT = f"{MEDIA_TYPE_MANIFEST}, application/vnd.oci.image.manifest.v1+json"
"""Ollama's manifest type, and OCI's, which tools such as oras push."""
_SAVE_SECONDS = 1.0

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def blob_lock(digest: str) -> Iterator[None]:
    """Serialise work on one digest in this process; concurrent pulls share a download."""
    with _locks_guard:
        lock = _locks.setdefault(digest, threading.Lock())
    with lock:
        yield


class _Stopped(Exception):
    """The pull was abandoned (client gone); workers stop at the next chunk."""


class _ShortRead(TransientError):
    """The body ended before the range did without an error; fetch the rest."""


@dataclass
class _Part:
    start: int
    end: int
    """Exclusive."""
    completed: int = 0

    @property
    def offset(self) -> int:
        return self.start + self.completed

    @property
    def remaining(self) -> int:
        return self.end - self.offset


def _split(size: int) -> list[_Part]:
    part_size = min(max(size // PARTS_PER_BLOB, PART_MIN), PART_MAX)
    return [_Part(start, min(start + part_size, size)) for start in range(0, size, part_size)]


class _PartialBlob:
    """The ``-partial`` file of one blob and the JSON that says what it holds."""

    def __init__(self, store: Store, layer: Layer) -> None:
        final = store.blob_path(layer.digest)
        self.final = final
        self.layer = layer
        self.path = final.with_name(final.name + PARTIAL_SUFFIX)
        self.state = final.with_name(final.name + STATE_SUFFIX)

    def load(self) -> list[_Part]:
        """The parts as saved by an earlier try, or a fresh split of an empty file."""
        try:
            saved = json.loads(self.state.read_text(encoding="utf-8"))
            if (
                saved["digest"] == self.layer.digest
                and saved["size"] == self.layer.size
                and self.path.stat().st_size == self.layer.size
            ):
                parts = [_Part(int(a), int(b), int(c)) for a, b, c in saved["parts"]]
                if all(p.start <= p.offset <= p.end for p in parts):
                    return parts
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        with self.path.open("wb") as out:
            out.truncate(self.layer.size)
        parts = _split(self.layer.size)
        self.save(parts)
        return parts

    def save(self, parts: list[_Part]) -> None:
        state = {
            "digest": self.layer.digest,
            "size": self.layer.size,
            "parts": [[p.start, p.end, p.completed] for p in parts],
        }
        atomic_write_bytes(self.state, json.dumps(state).encode())

    def discard(self) -> None:
        for path in (self.path, self.state):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def commit(self) -> None:
        """Hash the file; move it into place if it matches, else delete it and raise."""
        hasher = hashlib.sha256()
        with self.path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                hasher.update(chunk)
        got = f"sha256:{hasher.hexdigest()}"
        if got != self.layer.digest:
            self.discard()
            raise BlobDigestMismatch(self.layer.digest, got)
        self.path.chmod(0o644)
        os.replace(self.path, self.final)
        with contextlib.suppress(FileNotFoundError):
            self.state.unlink()


class BlobSource(Protocol):
    """Where blob bytes come from: a registry, or the Hugging Face Hub's ``resolve`` URLs."""

    def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, stream: bool = False
    ) -> httpx.Response:
        """One request; raises ``TransientError`` for answers worth trying again."""
        ...


def _fetch_range(
    source: BlobSource, url: str, path: Path, part: _Part, stop: threading.Event
) -> None:
    headers = {"Range": f"bytes={part.offset}-{part.end - 1}"}
    response = source.send("GET", url, headers=headers, stream=True)
    try:
        if response.status_code == 404:
            raise RegistryError(f"pull blob {url.rsplit('/', 1)[-1]}: file does not exist")
        if response.status_code not in (200, 206) or (
            response.status_code == 200 and part.offset != 0
        ):
            raise RegistryError(f"pull blob: unexpected status {response.status_code}")
        fd = os.open(path, os.O_WRONLY)
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                if stop.is_set():
                    raise _Stopped()
                _write_at(fd, chunk[: part.remaining], part)
                if part.remaining == 0:
                    break
        finally:
            os.close(fd)
    finally:
        response.close()
    if part.remaining:
        raise _ShortRead(f"connection ended {part.remaining} bytes early")


def _write_at(fd: int, data: bytes, part: _Part) -> None:
    """Write unbuffered, so the bytes ``part.completed`` counts survive a killed process."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, part.offset)
        part.completed += written
        view = view[written:]


def _fetch_part(
    source: BlobSource, url: str, path: Path, part: _Part, stop: threading.Event
) -> None:
    for attempt in retrying():
        with attempt:
            if part.remaining:
                _fetch_range(source, url, path, part, stop)


def _download(
    source: BlobSource, url: str, partial: _PartialBlob, parts: list[_Part]
) -> Iterator[Progress]:
    """Fetch the missing bytes of every part in parallel, reporting progress."""
    layer = partial.layer
    status = f"pulling {short_digest(layer.digest)}"
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL_PARTS, thread_name_prefix="pull")
    futures: list[Future[None]] = [
        pool.submit(_fetch_part, source, url, partial.path, part, stop)
        for part in parts
        if part.remaining
    ]
    saved_at = time.monotonic()
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=_PROGRESS_SECONDS, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
            yield Progress(status, layer.digest, layer.size, sum(p.completed for p in parts))
            if time.monotonic() - saved_at > _SAVE_SECONDS:
                partial.save(parts)
                saved_at = time.monotonic()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        partial.save(parts)


def pull_blob(source: BlobSource, url: str, store: Store, layer: Layer) -> Iterator[Progress]:
    """Download ``layer`` from ``url`` into its ``-partial`` file, resuming an earlier try.

    The bytes become a blob only in :func:`commit_blobs`, once they hash to
    the digest. Closing the generator stops the download and keeps what came.
    """
    status = f"pulling {short_digest(layer.digest)}"
    with blob_lock(layer.digest):
        if store.has_blob(layer.digest):
            yield Progress(status, layer.digest, layer.size, layer.size)
            return
        partial = _PartialBlob(store, layer)
        parts = partial.load()
        yield Progress(status, layer.digest, layer.size, sum(p.completed for p in parts))
        yield from _download(source, url, partial, parts)


def commit_blobs(store: Store, layers: list[Layer]) -> None:
    """Commit every verified blob; delete and report those that do not match."""
    mismatches: list[BlobDigestMismatch] = []
    for layer in layers:
        with blob_lock(layer.digest):
            if store.has_blob(layer.digest):
                continue  # a concurrent pull committed it
            try:
                _PartialBlob(store, layer).commit()
            except FileNotFoundError:
                raise RegistryError(
                    f"blob {layer.digest} was removed during the pull; pull again"
                ) from None
            except BlobDigestMismatch as exc:
                log.warning("%s", exc)
                mismatches.append(exc)
    if mismatches:
        raise mismatches[0]


def pull_from_registry(
    store: Store,
    name: Name,
    *,
    insecure: bool = False,
    basic_auth: tuple[str, str] | None = None,
    prune: bool = True,
) -> Iterator[Progress]:
    """Pull ``name`` from its registry into ``store``, yielding Ollama's progress.

    Closing the generator early stops the downloads and keeps what arrived
    for the next try. With ``prune``, blobs that only the replaced manifest
    used are removed. Raises the errors of :mod:`.errors`.
    """
    yield Progress("pulling manifest")
    with RegistryClient(name, insecure=insecure, basic_auth=basic_auth) as client:
        data = client.get_manifest(name.tag, _ACCEPT)
        try:
            manifest = Manifest.from_json(data)
        except CorruptModel as exc:
            raise RegistryError(f"pull model manifest: {exc}") from None
        fresh: list[Layer] = []
        for layer in [*manifest.layers, manifest.config]:
            if not store.has_blob(layer.digest):
                fresh.append(layer)
            try:
                yield from pull_blob(client, client.url(f"blobs/{layer.digest}"), store, layer)
            except httpx.HTTPError as exc:
                raise transport_failure(f"pull blob {layer.digest}", exc, client.base_url) from exc
    yield Progress("verifying sha256 digest")
    commit_blobs(store, fresh)
    yield from write_manifest(store, name, data, prune=prune)
    yield Progress("success")


def write_manifest(store: Store, name: Name, data: bytes, *, prune: bool) -> Iterator[Progress]:
    """Store a pulled manifest (over any old one), then drop blobs only the old one used."""
    target = store.find(name) or name
    try:
        old = [layer.digest for layer in store.read_manifest(target)[0].all_layers()]
    except (ModelNotFound, CorruptModel):
        old = []
    yield Progress("writing manifest")
    manifest = store.write_manifest_bytes(target, data)
    unused = sorted(set(old) - {layer.digest for layer in manifest.all_layers()})
    if prune and unused:
        yield Progress("removing unused layers")
        store.prune(unused)
