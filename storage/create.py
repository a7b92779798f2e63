"""Build a model from a base model or uploaded GGUF blobs: Ollama's ``/api/create``.

Two steps, so that bad input never leaves anything behind:

* :func:`plan_create` checks everything a request names (file paths, blobs,
  GGUF headers, adapters against the base's tensors, the quantization type)
  and writes nothing; it raises ``CreateError``, ``InvalidGGUF``,
  ``BlobNotFound`` or ``ModelNotFound``.
* :func:`run_create` writes the new layers, quantizing if asked, then the
  config and the manifest, reporting Ollama's progress lines as it goes.

Layers follow Ollama's order and rules: the base's layers first (marked
``from`` the base), then adapters; a new template or system replaces the
old one, licenses are appended, parameters are merged over the base's
(the request wins), and messages replace the base's when any are given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamaport.storage.errors import (
    BlobNotFound,
    CorruptModel,
    CreateError,
    InvalidDigest,
    InvalidGGUF,
    ModelNotFound,
)
from llamaport.storage.gguf_meta import (
    GGUFInfo,
    adapter_problem,
    config_for_gguf,
    read_gguf_info,
)
from llamaport.storage.layout import blobs_dir, normalize_digest
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
from llamaport.storage.progress import Progress
from llamaport.storage.quantize import SOURCE_TYPES, parse_quantize_type, quantize
from llamaport.storage.store import BlobRef, Store

__all__ = ["CreatePlan", "CreateRequest", "plan_create", "run_create"]

QUANTIZE_DIGEST = "0000000000000000000"
"""The placeholder ``digest`` Ollama sends with quantize progress."""


@dataclass(frozen=True)
class CreateRequest:
    """What to build. ``parameters`` are already typed against the option table."""

    name: str
    from_: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    adapters: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    messages: Sequence[Mapping[str, str]] = ()
    license: Sequence[str] = ()
    quantize: str = ""
    requires: str = ""
    """The llamaport/Ollama version the model needs (Modelfile ``REQUIRES``)."""


@dataclass
class CreatePlan:
    """A checked request: the layers to keep and what to add."""

    request: CreateRequest
    name: Name
    layers: list[Layer]
    model: Layer
    info: GGUFInfo
    quantize: str
    base_config: Mapping[str, Any]
    from_files: bool


def _valid_path(path: str) -> bool:
    """Go's ``fs.ValidPath``: relative, slash-separated, no ``.``/``..``/empty parts."""
    if path == ".":
        return True
    return bool(path) and all(part not in ("", ".", "..") for part in path.split("/"))


def _blob(store: Store, digest: str) -> tuple[str, Path]:
    if not digest:
        raise InvalidDigest(digest)
    canonical = normalize_digest(digest)
    path = store.blob_path(canonical)
    if not path.is_file():
        raise BlobNotFound(canonical)
    return canonical, path


def _gguf(path: Path) -> GGUFInfo:
    """Header facts of an uploaded blob; anything but a whole GGUF is ``InvalidGGUF``."""
    try:
        return read_gguf_info(path)
    except CorruptModel as exc:  # the file cannot be opened: still the client's blob
        raise InvalidGGUF(str(exc)) from None


def _file_layers(store: Store, files: Mapping[str, str]) -> list[Layer]:
    """A layer per uploaded GGUF, its kind read from its header."""
    layers: list[Layer] = []
    for filename in sorted(files):
        if filename.endswith(".safetensors"):
            raise CreateError(
                f"{filename}: safetensors models are not supported; convert them to GGUF first"
            )
        digest, path = _blob(store, files[filename])
        info = _gguf(path)
        if info.general_type == "adapter":
            kind = MEDIA_TYPE_ADAPTER
        elif info.architecture == "clip" or info.general_type in ("mmproj", "projector"):
            kind = MEDIA_TYPE_PROJECTOR
        else:
            kind = MEDIA_TYPE_MODEL
        layers.append(Layer(kind, digest, path.stat().st_size))
    if sum(layer.media_type == MEDIA_TYPE_MODEL for layer in layers) > 1:
        raise CreateError("more than one model GGUF given; split GGUFs are not supported")
    return layers


def plan_create(store: Store, req: CreateRequest) -> CreatePlan:
    """Check ``req`` against the store; nothing is written."""
    name = store.find(req.name) or parse_name(req.name)
    for filename, digest in [*req.files.items(), *req.adapters.items()]:
        if not _valid_path(filename):
            raise CreateError("file path must be relative")
        if not digest:
            raise InvalidDigest(digest)
    base_config: Mapping[str, Any] = {}
    if req.from_:
        record = store.get(req.from_)
        short = record.short_name
        layers = [dataclasses.replace(x, from_=short) for x in record.manifest.layers]
        base_config = record.config
    elif req.files:
        layers = _file_layers(store, req.files)
        if any(x.media_type == MEDIA_TYPE_ADAPTER for x in layers):
            raise CreateError("an adapter was given as a model file; pass it in adapters")
    else:
        raise CreateError("neither 'from' or 'files' was specified")
    models = [x for x in layers if x.media_type == MEDIA_TYPE_MODEL]
    if not models:
        raise CreateError("no model GGUF given")
    model = models[-1]
    info = store.gguf_info(store.blob_path(model.digest), str(name))
    for filename in sorted(req.adapters):
        digest, path = _blob(store, req.adapters[filename])
        problem = adapter_problem(_gguf(path), info)
        if problem:
            raise CreateError(f"adapter {filename} {problem}")
        layers.append(Layer(MEDIA_TYPE_ADAPTER, digest, path.stat().st_size))
    target = parse_quantize_type(req.quantize) if req.quantize else ""
    if target and info.file_type not in SOURCE_TYPES:
        raise CreateError("quantization is only supported for F16, BF16 and F32 models")
    if target == info.file_type:
        target = ""
    return CreatePlan(req, name, layers, model, info, target, base_config, not req.from_)


def _layer_status(digest: str, existed: bool) -> Progress:
    verb = "using existing" if existed else "creating new"
    return Progress(f"{verb} layer {digest}")


def _text_layer(store: Store, media_type: str, data: bytes) -> tuple[Layer, Progress]:
    existed = store.has_blob(f"sha256:{hashlib.sha256(data).hexdigest()}")
    ref = store.write_blob_bytes(data)
    store.touch_blob(ref.digest)
    return Layer(media_type, ref.digest, ref.size), _layer_status(ref.digest, existed)


def _go_json(value: Any) -> bytes:
    """Go's ``json.Encoder`` output: compact, map keys sorted, a final newline."""
    return (
        json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
        + b"\n"
    )


def _quantized(store: Store, plan: CreatePlan) -> Iterator[Progress | tuple[Layer, GGUFInfo]]:
    """Quantize the model layer into a new blob, reporting progress; the last
    item is the new layer and its header. The temp file never outlives this."""
    src = store.blob_path(plan.model.digest)
    total = plan.model.size
    status = f"quantizing {plan.info.file_type} model to {plan.quantize}"
    yield Progress(status, QUANTIZE_DIGEST, total, 0)
    blobs = blobs_dir(store.root)
    blobs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-quantize-", dir=blobs) as work:
        out = Path(work) / "model.gguf"
        for done, count in quantize(src, out, plan.quantize):
            yield Progress(status, QUANTIZE_DIGEST, total, total * done // max(count, 1))
        yield Progress("verifying conversion")
        info = _gguf(out)
        ref, existed = store.adopt_blob_file(out)
    yield _layer_status(ref.digest, existed)
    yield Layer(MEDIA_TYPE_MODEL, ref.digest, ref.size), info


def _replace(layers: list[Layer], media_types: Sequence[str], new: Layer | None) -> list[Layer]:
    kept = [x for x in layers if x.media_type not in media_types]
    return kept if new is None else [*kept, new]


def _params(store: Store, layers: list[Layer], request: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer.media_type == MEDIA_TYPE_PARAMS:
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(store.blob_path(layer.digest).read_bytes())
                merged.update(old if isinstance(old, dict) else {})
    merged.update(request)
    return merged


def run_create(store: Store, plan: CreatePlan, *, prune: bool = True) -> Iterator[Progress]:
    """Write the model ``plan`` describes, yielding progress; ends with ``success``.

    Blocking: drive it from a thread. Closed early, it stops before the
    manifest is written, leaving only unreferenced blobs for the collector.
    """
    req = plan.request
    if plan.from_files:
        yield Progress("parsing GGUF")
    old_digests: list[str] = []
    with contextlib.suppress(ModelNotFound, CorruptModel):
        old_digests = [x.digest for x in store.read_manifest(plan.name)[0].all_layers()]
    layers = list(plan.layers)
    info = plan.info
    if plan.from_files:  # uploads nothing references yet; a base's layers are in use
        for layer in layers:
            store.touch_blob(layer.digest)
    if plan.quantize:
        for item in _quantized(store, plan):
            if isinstance(item, Progress):
                yield item
            else:
                model, info = item
                layers = [model if x == plan.model else x for x in layers]
    for layer in layers:
        if layer.media_type != MEDIA_TYPE_MODEL or not plan.quantize:
            yield _layer_status(layer.digest, True)
    texts: list[tuple[str, tuple[str, ...], bytes]] = []
    if req.template:
        texts.append(
            (MEDIA_TYPE_TEMPLATE, (MEDIA_TYPE_TEMPLATE, MEDIA_TYPE_PROMPT), req.template.encode())
        )
    if req.system:
        texts.append((MEDIA_TYPE_SYSTEM, (MEDIA_TYPE_SYSTEM,), req.system.encode()))
    texts += [(MEDIA_TYPE_LICENSE, (), text.encode()) for text in req.license if text]
    params = _params(store, layers, req.parameters)
    if params:
        texts.append((MEDIA_TYPE_PARAMS, (MEDIA_TYPE_PARAMS,), _go_json(params)))
    if req.messages:
        data = _go_json([dict(m) for m in req.messages])
        texts.append((MEDIA_TYPE_MESSAGES, (MEDIA_TYPE_MESSAGES,), data))
    for media_type, replaces, data in texts:
        new, status = _text_layer(store, media_type, data)
        layers = _replace(layers, replaces, new)
        yield status
    config = dataclasses.replace(
        config_for_gguf(info),
        renderer=str(plan.base_config.get("renderer") or ""),
        parser=str(plan.base_config.get("parser") or ""),
        requires=req.requires or str(plan.base_config.get("requires") or ""),
    )
    ref: BlobRef = store.write_blob_bytes(config.to_json())
    yield Progress("writing manifest")
    manifest = Manifest(config=Layer(MEDIA_TYPE_CONFIG, ref.digest, ref.size), layers=layers)
    store.write_manifest(plan.name, manifest)
    if prune and old_digests:
        store.prune(old_digests)
    yield Progress("success")
