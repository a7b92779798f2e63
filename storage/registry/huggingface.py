"""Pulling ``hf.co/<org>/<repo>[:<quant>]`` GGUF models through huggingface_hub.

The repository's files are listed with ``HfApi.model_info``, one ``.gguf``
file is chosen by the tag (a quantisation such as ``Q4_K_M``; ``latest``
means ``Q4_K_M`` if the repo has it, else the smallest file). A file whose
sha256 is already a blob is not downloaded again; otherwise its ``resolve``
URL is fetched by the registry puller's machinery (:func:`.download.pull_blob`):
parallel ranged parts in a ``-partial`` file that an interrupted pull resumes
(huggingface_hub 2.x downloads into a per-process temporary file, so its
pulls start over). The bytes must hash to the sha256 the Hub lists and be a
valid GGUF (header checked); then they are a blob and the model is
stored as Ollama names it, ``manifests/hf.co/<org>/<repo>/<tag>``, with a
config built from its header. The endpoint is ``Settings.hf_endpoint``
(``HF_ENDPOINT``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from llamaport.storage.errors import InvalidGGUF, InvalidModelName
from llamaport.storage.gguf_meta import GGUFInfo, read_gguf_info
from llamaport.storage.manifest import MEDIA_TYPE_MODEL, Layer
from llamaport.storage.names import Name
from llamaport.storage.progress import Progress, short_digest
from llamaport.storage.registry.client import checked_answer, http_client
from llamaport.storage.registry.download import commit_blobs, pull_blob, write_manifest
from llamaport.storage.registry.errors import (
    ManifestNotFound,
    QuantizationNotFound,
    RegistryError,
    RegistryUnauthorized,
    transport_failure,
)
from llamaport.storage.store import BlobRef, Store

if TYPE_CHECKING:  # huggingface_hub costs ~0.8 s to import; serve imports it on first pull
    from huggingface_hub import HfApi

__all__ = [
    "DEFAULT_QUANT",
    "HF_HOSTS",
    "GGUFFile",
    "choose_gguf",
    "is_huggingface",
    "pull_from_huggingface",
]

HF_HOSTS = frozenset({"hf.co", "huggingface.co"})
DEFAULT_QUANT = "Q4_K_M"
_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


def is_huggingface(name: Name) -> bool:
    """Whether ``name`` lives on the Hugging Face Hub (``hf.co`` or ``huggingface.co``)."""
    return name.host.lower() in HF_HOSTS


@dataclass(frozen=True)
class GGUFFile:
    """One ``.gguf`` file of a repository; ``sha256`` is the Hub's LFS hash, if listed."""

    path: str
    size: int
    sha256: str | None = None


def _mentions(path: str, quant: str) -> bool:
    """Whether the file name carries the quantisation tag as a whole word."""
    stem = path.rsplit("/", 1)[-1]
    pattern = rf"(?<![A-Za-z0-9]){re.escape(quant)}(?![A-Za-z0-9_])"
    return re.search(pattern, stem, re.IGNORECASE) is not None


def choose_gguf(repo: str, files: list[GGUFFile], tag: str) -> GGUFFile:
    """The file a tag stands for: ``latest`` is Q4_K_M, else the smallest.

    Projector (``mmproj``) files are never chosen. Raises
    ``QuantizationNotFound`` when nothing matches, and ``RegistryError`` for
    a model split over several files.
    """
    models = [f for f in files if "mmproj" not in f.path.rsplit("/", 1)[-1].lower()]
    wanted = DEFAULT_QUANT if tag.lower() == "latest" else tag
    matches = [f for f in models if _mentions(f.path, wanted)]
    if not matches and tag.lower() == "latest":
        matches = models
    if not matches:
        raise QuantizationNotFound(repo, tag, sorted(f.path for f in models))
    chosen = min(matches, key=lambda f: (f.size, f.path))
    if _SPLIT.search(chosen.path):
        raise RegistryError(f"{chosen.path} is split into several files, which is not supported")
    return chosen


def _list_ggufs(api: HfApi, repo: str) -> tuple[str, list[GGUFFile]]:
    """The repo's commit and its GGUF files, with the Hub's errors translated."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
    )

    try:
        info = api.model_info(repo, files_metadata=True)
    except GatedRepoError as exc:
        raise RegistryUnauthorized(f"{repo} is gated; set HF_TOKEN: {exc}") from None
    except RepositoryNotFoundError:
        raise ManifestNotFound() from None
    except HFValidationError:
        raise InvalidModelName(repo) from None
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        raise transport_failure("pull model manifest", exc, api.endpoint) from None
    files = [
        GGUFFile(s.rfilename, s.size or 0, s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or []
        if s.rfilename.lower().endswith(".gguf")
    ]
    return info.sha or "main", files


class _HubSource:
    """A :class:`.download.BlobSource` for the Hub's ``resolve`` URLs: the token goes
    to the endpoint only (httpx drops it on a redirect to the storage host)."""

    def __init__(self, token: str | None) -> None:
        self.http = http_client()
        self._token = token

    def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, stream: bool = False
    ) -> httpx.Response:
        merged = dict(headers or {})
        if self._token:
            merged["Authorization"] = f"Bearer {self._token}"
        request = self.http.build_request(method, url, headers=merged)
        return checked_answer(self.http.send(request, stream=stream))


def _download(
    store: Store, url: str, chosen: GGUFFile, layer: Layer, token: str | None
) -> Iterator[Progress]:
    """Fetch the file as a blob with the registry puller's resumable ranged parts."""
    source = _HubSource(token)
    try:
        yield from pull_blob(source, url, store, layer)
    except httpx.HTTPError as exc:
        raise transport_failure(f"pull {chosen.path}", exc, url) from exc
    finally:
        source.http.close()
    yield Progress("verifying sha256 digest")
    commit_blobs(store, [layer])


def _checked(store: Store, chosen: GGUFFile, digest: str, fresh: bool) -> tuple[GGUFInfo, BlobRef]:
    """The blob's GGUF header; a file that is not a GGUF is refused, and dropped if new."""
    path = store.blob_path(digest)
    try:
        info = read_gguf_info(path)
    except InvalidGGUF:
        if fresh:
            store.prune([digest])
        raise RegistryError(f"{chosen.path}: not a valid GGUF file") from None
    return info, store.import_blob_file(path, digest)


def pull_from_huggingface(
    store: Store, name: Name, *, endpoint: str, token: str | None = None, prune: bool = True
) -> Iterator[Progress]:
    """Pull one GGUF of the Hub repository ``name`` names; see the module docstring."""
    yield Progress("pulling manifest")
    from huggingface_hub import HfApi

    repo = f"{name.namespace}/{name.model}"
    api = HfApi(endpoint=endpoint, token=token)
    revision, files = _list_ggufs(api, repo)
    chosen = choose_gguf(f"{name.host}/{repo}", files, name.tag)
    if not chosen.sha256:
        raise RegistryError(f"{chosen.path} has no sha256 on the Hub, so it cannot be verified")
    digest = f"sha256:{chosen.sha256}"
    layer = Layer(MEDIA_TYPE_MODEL, digest, chosen.size)
    fresh = not store.has_blob(digest)
    if fresh:
        url = f"{api.endpoint}/{repo}/resolve/{revision}/{quote(chosen.path)}"
        yield from _download(store, url, chosen, layer, token)
    else:  # already here, under another name
        yield Progress(f"pulling {short_digest(digest)}", digest, chosen.size, chosen.size)
    info, weights = _checked(store, chosen, digest, fresh)
    manifest = store.weights_manifest(info, weights)
    config = manifest.config
    yield Progress(
        f"pulling {short_digest(config.digest)}", config.digest, config.size, config.size
    )
    yield from write_manifest(store, name, manifest.to_json(), prune=prune)
    yield Progress("success")
