"""The on-disk model store: names to manifests, manifests to blobs.

The layout is Ollama's (see :mod:`llamaport.storage.layout`), so a store can
be shared with, or copied from, an Ollama install. All writes are atomic
(temp file, then rename); reads never see a half-written manifest or blob.
A :class:`Store` keeps only a cache of parsed manifests, checked against each
file's identity on every read (an atomic rewrite makes a new inode), so one
instance may be used from several threads and sees other writers' changes.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llamaport.storage._blobs import (
    BlobRef,
    ImportCache,
    Readable,
    atomic_write_bytes,
    check_free_space,
    hash_file,
    link_into,
    stream_into,
)
from llamaport.storage.errors import (
    BlobTooLarge,
    CorruptModel,
    DigestMismatch,
    InvalidGGUF,
    ModelNotFound,
)
from llamaport.storage.gguf_meta import GGUFInfo, adapter_problem, config_for_gguf, read_gguf_info
from llamaport.storage.layout import (
    blob_path,
    blobs_dir,
    digest_hex,
    manifest_path,
    manifests_dir,
    name_from_manifest_path,
    normalize_digest,
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

__all__ = ["IMPORT_CACHE_FILE", "PRUNE_GRACE", "BlobRef", "ModelRecord", "Store"]

log = logging.getLogger(__name__)

IMPORT_CACHE_FILE = ".llamaport-import-cache.json"
PRUNE_GRACE = 3600.0
"""Seconds an unreferenced blob is spared (Ollama's ``layerPruneGracePeriod``), so
a blob uploaded for a create that has not run yet is not collected."""
_BLOB_NAME = re.compile(r"sha256-[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ModelRecord:
    """Everything the manifest of one model says, with text layers read in.

    ``digest`` is the sha256 hex of the manifest file (no prefix), ``size``
    the sum of layer and config sizes, ``modified_at`` the manifest's mtime in
    local time: the values ``/api/tags`` reports.
    """

    name: Name
    digest: str
    size: int
    modified_at: datetime
    model_path: Path
    adapters: list[Path]
    projectors: list[Path]
    template: str | None
    system: str | None
    params: dict[str, Any]
    messages: list[dict[str, str]]
    license: list[str]
    config: dict[str, Any]
    manifest: Manifest
    parent_model: str = ""

    @property
    def short_name(self) -> str:
        """``name.display_shortest()``: the ``name``/``model`` field of the API."""
        return self.name.display_shortest()


def _json_layer(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptModel(f"{what} is not valid JSON: {exc}") from None


def _messages(value: Any, what: str) -> builtins.list[dict[str, str]]:
    if not isinstance(value, builtins.list) or not all(isinstance(m, dict) for m in value):
        raise CorruptModel(f"{what} is not a list of messages")
    return [{k: v for k, v in m.items() if isinstance(v, str)} for m in value]


class Store:
    """A model store rooted at ``root`` (``Settings.models``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._imports = ImportCache(root / IMPORT_CACHE_FILE)
        self._records: dict[Name, tuple[tuple[int, int, int], ModelRecord]] = {}
        """Records by the names :meth:`load` was given (stored names, exactly
        cased), each with its manifest's (inode, size, mtime) when read."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store ``LLAMAPORT_MODELS``/``OLLAMA_MODELS`` points at."""
        return cls(settings.models)

    # -- names -----------------------------------------------------------------

    def manifest_path(self, name: Name) -> Path:
        """Where ``name``'s manifest lives (or would live), case as given."""
        return manifest_path(self.root, name)

    def names(self) -> builtins.list[Name]:
        """Every name with a manifest file exactly four levels under ``manifests/``."""
        found: builtins.list[Name] = []
        for path in sorted(manifests_dir(self.root).glob("*/*/*/*")):
            name = name_from_manifest_path(self.root, path)
            if name is not None and path.is_file():
                found.append(name)
        return found

    def find(self, name: str | Name) -> Name | None:
        """The stored name matching ``name``, exactly or else ignoring case.

        Raises ``InvalidModelName`` for text outside the grammar.
        """
        wanted = parse_name(name) if isinstance(name, str) else name
        existing = self.names()
        if wanted in existing:
            return next(e for e in existing if e == wanted)
        return next((e for e in existing if e.equal_fold(wanted)), None)

    def resolve(self, name: str) -> Name:
        """The stored, canonically cased name for a request string.

        Raises ``InvalidModelName`` or ``ModelNotFound`` (carrying ``name``).
        """
        found = self.find(name)
        if found is None:
            raise ModelNotFound(name)
        return found

    # -- models ----------------------------------------------------------------

    def get(self, name: str) -> ModelRecord:
        """Resolve ``name`` and load its record; see :meth:`load` for errors.

        A name loaded before, cased as stored, skips the listing that resolving
        takes (a glob of every manifest: half of a request's store time).
        """
        wanted = parse_name(name)
        if wanted in self._records:
            with contextlib.suppress(ModelNotFound):
                return self.load(wanted)
        resolved = self.resolve(name)
        try:
            return self.load(resolved)
        except ModelNotFound:
            raise ModelNotFound(name) from None

    def read_manifest(self, name: Name) -> tuple[Manifest, bytes]:
        """The parsed manifest and its exact bytes; ``ModelNotFound`` if absent."""
        try:
            data = self.manifest_path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ModelNotFound(name.display_shortest()) from None
        return Manifest.from_json(data), data

    def load(self, name: Name) -> ModelRecord:
        """Load the record of an already-resolved name.

        Raises ``ModelNotFound`` if it has no manifest and ``CorruptModel`` if
        the manifest is unreadable, a blob is missing, or a layer is malformed.
        The parsed record is kept while the manifest file stays the same one;
        its blobs are looked for on every call.
        """
        try:
            stat = self.manifest_path(name).stat()
        except (FileNotFoundError, NotADirectoryError):
            self._records.pop(name, None)
            raise ModelNotFound(name.display_shortest()) from None
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        kept = self._records.get(name)
        if kept is not None and kept[0] == identity:
            self._check_blobs(kept[1].manifest, kept[1].short_name)
            return kept[1]
        manifest, data = self.read_manifest(name)
        self._check_blobs(manifest, name.display_shortest())
        record = self._parse(name, manifest, data, stat.st_mtime)
        self._records[name] = (identity, record)
        return record

    def _check_blobs(self, manifest: Manifest, short: str) -> None:
        for layer in manifest.all_layers():
            if not self.has_blob(layer.digest):
                raise CorruptModel(f"model {short}: blob {layer.digest} is missing")

    def _parse(self, name: Name, manifest: Manifest, data: bytes, mtime: float) -> ModelRecord:
        """The record of ``name``'s manifest, its layers read in (see :meth:`load`)."""
        short = name.display_shortest()
        config = _json_layer(self._read_blob(manifest.config), f"config of {short}")
        if not isinstance(config, dict):
            raise CorruptModel(f"config of {short} is not a JSON object")
        models = manifest.layers_of(MEDIA_TYPE_MODEL)
        if not models:
            raise CorruptModel(f"model {short} has no {MEDIA_TYPE_MODEL} layer")
        layers = self._read_text_layers(manifest, short)
        return ModelRecord(
            name=name,
            digest=hashlib.sha256(data).hexdigest(),
            size=manifest.size,
            modified_at=datetime.fromtimestamp(mtime, tz=UTC).astimezone(),
            model_path=self.blob_path(models[-1].digest),
            adapters=[self.blob_path(x.digest) for x in manifest.layers_of(MEDIA_TYPE_ADAPTER)],
            projectors=[self.blob_path(x.digest) for x in manifest.layers_of(MEDIA_TYPE_PROJECTOR)],
            config=config,
            manifest=manifest,
            parent_model=models[-1].from_ or "",
            **layers,
        )

    def _read_blob(self, layer: Layer) -> bytes:
        try:
            return self.blob_path(layer.digest).read_bytes()
        except OSError as exc:
            raise CorruptModel(f"cannot read blob {layer.digest}: {exc.strerror}") from None

    def _read_text_layers(self, manifest: Manifest, short: str) -> dict[str, Any]:
        """Template, system, params, messages and licenses; the last layer of a kind wins."""
        out: dict[str, Any] = {
            "template": None,
            "system": None,
            "params": {},
            "messages": [],
            "license": [],
        }
        for layer in manifest.layers:
            kind = layer.media_type
            if kind not in _TEXT_KINDS:
                continue
            data = self._read_blob(layer)
            if kind in (MEDIA_TYPE_TEMPLATE, MEDIA_TYPE_PROMPT):
                out["template"] = data.decode("utf-8", errors="replace")
            elif kind == MEDIA_TYPE_SYSTEM:
                out["system"] = data.decode("utf-8", errors="replace")
            elif kind == MEDIA_TYPE_LICENSE:
                out["license"].append(data.decode("utf-8", errors="replace"))
            elif kind == MEDIA_TYPE_PARAMS:
                params = _json_layer(data, f"params of {short}")
                if not isinstance(params, dict):
                    raise CorruptModel(f"params of {short} is not a JSON object")
                out["params"] = params
            else:
                what = f"messages of {short}"
                out["messages"] = _messages(_json_layer(data, what), what)
        return out

    def list(self) -> builtins.list[ModelRecord]:
        """Every loadable model, newest first; broken ones are logged and skipped."""
        records: builtins.list[ModelRecord] = []
        for name in self.names():
            try:
                records.append(self.load(name))
            except (CorruptModel, ModelNotFound, OSError) as exc:
                log.warning("skipping model %s: %s", name.display_shortest(), exc)
        records.sort(key=lambda r: (-r.modified_at.timestamp(), r.short_name))
        return records

    def write_manifest(self, name: Name, manifest: Manifest) -> None:
        """Atomically write ``manifest`` for ``name``; every blob must already exist."""
        self.write_manifest_bytes(name, manifest.to_json())

    def write_manifest_bytes(self, name: Name, data: bytes) -> Manifest:
        """Store manifest bytes exactly as given (a registry's, so its digest holds).

        Raises ``CorruptModel`` if they do not parse or name a missing blob.
        """
        manifest = Manifest.from_json(data)
        for layer in manifest.all_layers():
            if not self.has_blob(layer.digest):
                raise CorruptModel(f"blob {layer.digest} is missing; write it first")
        path = self.manifest_path(name)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        return manifest

    def copy(self, source: str, destination: str) -> Name:
        """Copy a manifest (blobs are shared); returns the destination name.

        Raises ``InvalidModelName`` for either name and ``ModelNotFound`` for
        a missing source. An existing destination, in any case, is replaced.
        """
        src = self.resolve(source)
        dst = self.find(destination) or parse_name(destination)
        _, data = self.read_manifest(src)
        self.write_manifest_bytes(dst, data)
        return dst

    def delete(self, name: str) -> Name:
        """Remove a model's manifest, then the blobs no other manifest uses."""
        resolved = self.resolve(name)
        try:
            digests = [layer.digest for layer in self.read_manifest(resolved)[0].all_layers()]
        except CorruptModel:
            digests = []  # still remove the broken manifest; its blobs cannot be known
        path = self.manifest_path(resolved)
        path.unlink()
        self._remove_empty_dirs(path.parent)
        self._remove_unreferenced(digests)
        return resolved

    def prune(self, digests: builtins.list[str]) -> None:
        """Remove those of ``digests`` that no manifest references any more."""
        self._remove_unreferenced(digests)

    def _remove_empty_dirs(self, directory: Path) -> None:
        top = manifests_dir(self.root)
        while directory != top and top in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _referenced_digests(self, strict: bool = False) -> set[str] | None:
        """Hex digests every manifest uses; with ``strict``, None if one is unreadable."""
        used: set[str] = set()
        for name in self.names():
            try:
                manifest, _ = self.read_manifest(name)
            except (CorruptModel, ModelNotFound):
                if strict:
                    return None
                continue
            used.update(digest_hex(layer.digest) for layer in manifest.all_layers())
        return used

    def _remove_unreferenced(self, digests: builtins.list[str]) -> None:
        used = self._referenced_digests() or set()
        for digest in digests:
            if digest_hex(digest) not in used:
                with contextlib.suppress(FileNotFoundError):
                    self.blob_path(digest).unlink()

    def collect_garbage(self, grace: float = PRUNE_GRACE) -> builtins.list[str]:
        """Remove blobs no manifest references, and abandoned temp files, that
        are older than ``grace`` seconds; returns the names removed.

        Nothing is removed while any manifest is unreadable (its blobs cannot
        be known), as Ollama does. Other files in ``blobs/`` (partial
        downloads, caches) are left alone.
        """
        used = self._referenced_digests(strict=True)
        if used is None:
            log.warning("not pruning blobs: a manifest is unreadable")
            return []
        cutoff = time.time() - grace
        removed: builtins.list[str] = []
        try:
            entries = builtins.list(os.scandir(blobs_dir(self.root)))
        except FileNotFoundError:
            return removed
        for entry in entries:
            name = entry.name
            is_blob = _BLOB_NAME.fullmatch(name) is not None and name[7:] not in used
            if not (is_blob or name.startswith(_TEMP_PREFIX)):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(name)
        if removed:
            log.info("pruned %d unused blob(s)", len(removed))
        return removed

    # -- integrity -------------------------------------------------------------

    def verify_model(self, record: ModelRecord) -> None:
        """Check every blob of ``record`` before it is loaded.

        Each blob must still hash to its name (a blob seen intact with the
        same size, mtime and inode costs one ``stat``), the weights, adapters
        and projectors must be whole GGUF files, and each adapter must fit the
        weights (llama.cpp would refuse it at load). Raises
        ``CorruptModel`` naming the model and the blob.
        """
        short = record.short_name
        for layer in record.manifest.all_layers():
            self._verify_blob(layer.digest, short)
        base = self.gguf_info(record.model_path, short)
        for path in record.projectors:
            self.gguf_info(path, short)
        for path in record.adapters:
            problem = adapter_problem(self.gguf_info(path, short), base)
            if problem:
                digest = path.name.replace("-", ":", 1)
                raise CorruptModel(f"model {short}: adapter {digest} {problem}")

    def gguf_info(self, path: Path, model: str) -> GGUFInfo:
        """``read_gguf_info`` for a stored blob; a damaged one is ``CorruptModel``."""
        try:
            return read_gguf_info(path)
        except InvalidGGUF as exc:
            raise CorruptModel(
                f"model {model}: blob {path.name.replace('-', ':', 1)} is not a valid GGUF "
                f"file ({exc.detail}); "
                "remove the model and pull or create it again"
            ) from None

    def _verify_blob(self, digest: str, model: str) -> None:
        path = self.blob_path(digest)
        expected = normalize_digest(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise CorruptModel(f"model {model}: blob {expected} is missing") from None
        if self._imports.lookup(path, stat) == expected:
            return
        got = hash_file(path).digest
        if got != expected:
            raise CorruptModel(
                f"model {model}: blob {expected} is corrupt (its content hashes to {got}); "
                "remove the model and pull or create it again"
            )
        self._imports.remember(path, stat, expected)

    def _remember_blob(self, ref: BlobRef) -> BlobRef:
        """Record a blob just written and verified, so loading it costs a ``stat``."""
        path = self.blob_path(ref.digest)
        with contextlib.suppress(FileNotFoundError):
            self._imports.remember(path, path.stat(), ref.digest)
        return ref

    # -- blobs -----------------------------------------------------------------

    def adopt_blob_file(self, path: Path) -> tuple[BlobRef, bool]:
        """Move a finished file from inside ``blobs/`` into place under its digest.

        Returns the blob and whether it already existed (then ``path`` is
        just removed). For outputs written in the store, such as quantizing.
        """
        ref = hash_file(path)
        final = self.blob_path(ref.digest)
        existed = final.is_file()
        if existed:
            path.unlink()
        else:
            path.chmod(0o644)
            os.replace(path, final)
        return self._remember_blob(ref), existed

    def touch_blob(self, digest: str) -> None:
        """Mark a reused blob as recent so :meth:`collect_garbage` spares it for a
        while; a blob already verified stays verified."""
        path = self.blob_path(digest)
        expected = normalize_digest(digest)
        try:
            verified = self._imports.lookup(path, path.stat()) == expected
            os.utime(path)
        except FileNotFoundError:
            return
        if verified:
            self._remember_blob(BlobRef(expected, path.stat().st_size))

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives; raises ``InvalidDigest`` for a malformed digest."""
        return blob_path(self.root, digest)

    def has_blob(self, digest: str) -> bool:
        """Whether the blob exists; raises ``InvalidDigest`` for a malformed digest."""
        return self.blob_path(digest).is_file()

    def weights_manifest(self, info: GGUFInfo, weights: BlobRef) -> Manifest:
        """A model that is only GGUF weights: their config blob is written, then one layer."""
        config = self.write_blob_bytes(config_for_gguf(info).to_json())
        return Manifest(
            config=Layer(MEDIA_TYPE_CONFIG, config.digest, config.size),
            layers=[Layer(MEDIA_TYPE_MODEL, weights.digest, weights.size)],
        )

    def write_blob_bytes(self, data: bytes, expected_digest: str | None = None) -> BlobRef:
        """Store ``data`` as a blob (a no-op if present); see :meth:`write_blob_stream`."""
        return self.write_blob_stream(io.BytesIO(data), expected_digest)

    def write_blob_stream(
        self,
        stream: Readable,
        expected_digest: str | None = None,
        *,
        size: int | None = None,
        limit: int = 0,
    ) -> BlobRef:
        """Store a stream as a blob, verifying ``expected_digest`` if given.

        Raises ``InvalidDigest`` before reading anything if ``expected_digest``
        is malformed, and ``DigestMismatch`` (having discarded the bytes) if
        the content hashes differently. Returns immediately when the expected
        blob already exists. ``size`` (the announced length) is checked against
        ``limit`` (bytes, 0 for none: ``BlobTooLarge``) and the free disk space
        (``InsufficientStorage``) before anything is written; the copy itself
        stops at the limit or a full disk, keeping nothing.
        """
        expected = None if expected_digest is None else normalize_digest(expected_digest)
        if expected is not None and self.has_blob(expected):
            return BlobRef(expected, self.blob_path(expected).stat().st_size)
        blobs = blobs_dir(self.root)
        if size is not None:
            if 0 < limit < size:
                raise BlobTooLarge(limit)
            check_free_space(blobs, size)
        return self._remember_blob(stream_into(blobs, stream, expected, self.blob_path, limit))

    def import_blob_file(
        self, src: Path, expected_digest: str | None = None, *, link: bool = False
    ) -> BlobRef:
        """Bring a file from outside the store in as a blob.

        With ``link=True`` the blob is a hard link to ``src`` where the
        filesystem allows, else a copy. The digest of ``src`` is cached by
        (path, size, mtime, inode), so importing an unchanged file again costs
        a ``stat``. Raises ``InvalidDigest``/``DigestMismatch`` like
        :meth:`write_blob_stream`, and ``OSError`` if ``src`` is unreadable.
        """
        expected = None if expected_digest is None else normalize_digest(expected_digest)
        stat = src.stat()
        cached = self._imports.lookup(src, stat)
        if (
            cached is not None
            and expected in (None, cached)
            and self._blob_size(cached) == stat.st_size
        ):
            return BlobRef(cached, stat.st_size)
        if expected is not None and self.has_blob(expected):
            return BlobRef(expected, self._blob_size(expected) or 0)
        ref = self._link_blob(src, expected) if link and self._same_device(stat) else None
        if ref is None:
            with src.open("rb") as handle:
                ref = stream_into(blobs_dir(self.root), handle, expected, self.blob_path)
        self._imports.remember(src, stat, ref.digest)
        return self._remember_blob(ref)

    def _link_blob(self, src: Path, expected: str | None) -> BlobRef | None:
        ref = hash_file(src)
        if expected is not None and ref.digest != expected:
            raise DigestMismatch(expected, ref.digest)
        if self.has_blob(ref.digest):
            return ref
        final = self.blob_path(ref.digest)
        return ref if link_into(src, final) else None

    def _same_device(self, stat: os.stat_result) -> bool:
        """Whether a hard link can work, checked before paying for a separate hash."""
        blobs = blobs_dir(self.root)
        blobs.mkdir(mode=0o755, parents=True, exist_ok=True)
        return blobs.stat().st_dev == stat.st_dev

    def _blob_size(self, digest: str) -> int | None:
        try:
            return os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            return None


_TEXT_KINDS = frozenset(
    {
        MEDIA_TYPE_TEMPLATE,
        MEDIA_TYPE_PROMPT,
        MEDIA_TYPE_SYSTEM,
        MEDIA_TYPE_PARAMS,
        MEDIA_TYPE_MESSAGES,
        MEDIA_TYPE_LICENSE,
    }
)
