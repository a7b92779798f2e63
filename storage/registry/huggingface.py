"""Pulling ``hf.co/<org>/<repo>[:<quant>]`` GGUF models through huggingface_hub.

The repository's files are listed with ``HfApi.model_info``, one ``.gguf``
file is chosen by the tag (a quantisation such as ``Q4_K_M``; ``latest``
means ``Q4_K_M`` if the repo has it, else the smallest file). A file whose
sha256 is already a blob is not downloaded again; otherwise it is downloaded
with ``hf_hub_download`` into a ``-partial`` folder next to the blobs, which
is removed however the pull ends. huggingface_hub retries and resumes within
one call, but (2.x) downloads into a per-process temporary file, so an
interrupted pull starts over. The file must be a valid GGUF (header checked)
and hash to the sha256 the Hub lists; then it becomes a blob and the model is
stored as Ollama names it, ``manifests/hf.co/<org>/<repo>/<tag>``, with a
config built from its header. The endpoint is ``Settings.hf_endpoint``
(``HF_ENDPOINT``).

huggingface_hub is imported inside the functions that use it: it is about a
fifth of what ``serve`` imports before it listens, and most servers never
pull from the Hub.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamaport.storage.errors import DigestMismatch, InvalidGGUF, InvalidModelName
from llamaport.storage.gguf_meta import GGUFInfo, read_gguf_info
from llamaport.storage.layout import blobs_dir
from llamaport.storage.names import Name
from llamaport.storage.progress import Progress, short_digest
from llamaport.storage.registry.download import write_manifest
from llamaport.storage.registry.errors import (
    BlobDigestMismatch,
    ManifestNotFound,
    QuantizationNotFound,
    RegistryError,
    RegistryUnauthorized,
)
from llamaport.storage.store import BlobRef, Store

if TYPE_CHECKING:
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
_PROGRESS_SECONDS = 0.1


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
        raise RegistryError(f"pull model manifest: {exc}") from None
    files = [
        GGUFFile(s.rfilename, s.size or 0, s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or []
        if s.rfilename.lower().endswith(".gguf")
    ]
    return info.sha or "main", files


class _Counter:
    """Bytes reported by huggingface_hub's progress bar, read by the pulling generator."""

    def __init__(self, initial: int = 0) -> None:
        self.completed = initial
        self.stop = threading.Event()


class _Stopped(Exception):
    """Raised inside huggingface_hub's download loop to abandon it."""


def _bar_class(counter: _Counter) -> type[Any]:
    """A silent tqdm that feeds ``counter`` and aborts once ``counter.stop`` is set."""
    from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

    class _Bar(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
            counter.completed = int(kwargs.get("initial") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            if counter.stop.is_set():
                raise _Stopped()
            counter.completed += int(n or 0)
            return None

    return _Bar


def _download(
    api: HfApi, repo: str, revision: str, chosen: GGUFFile, folder: Path, status: str, digest: str
) -> Generator[Progress, None, Path]:
    """Run ``hf_hub_download`` in a thread, yielding progress; returns the file's path."""
    import httpx2
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    counter = _Counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-pull") as pool:
        future = pool.submit(
            hf_hub_download,
            repo,
            chosen.path,
            revision=revision,
            local_dir=folder,
            endpoint=api.endpoint,
            token=api.token,
            tqdm_class=_bar_class(counter),
        )
        try:
            while not future.done():
                wait([future], timeout=_PROGRESS_SECONDS)
                yield Progress(status, digest, chosen.size, min(counter.completed, chosen.size))
            return Path(future.result())
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
            raise RegistryError(f"pull {chosen.path}: {exc}") from None
        finally:
            counter.stop.set()


def _checked(store: Store, path: Path, chosen: GGUFFile, digest: str) -> tuple[GGUFInfo, BlobRef]:
    """Check the GGUF header and the Hub's sha256, and store the file as a blob."""
    try:
        info = read_gguf_info(path)
        return info, store.import_blob_file(path, digest or None, link=True)
    except InvalidGGUF:
        raise RegistryError(f"{chosen.path}: not a valid GGUF file") from None
    except DigestMismatch as exc:
        raise BlobDigestMismatch(exc.expected, exc.got) from None


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
    digest = f"sha256:{chosen.sha256}" if chosen.sha256 else ""
    status = f"pulling {short_digest(digest)}" if digest else f"pulling {chosen.path}"
    if digest and store.has_blob(digest):  # already here, under another name
        yield Progress(status, digest, chosen.size, chosen.size)
        info, weights = _checked(store, store.blob_path(digest), chosen, digest)
    else:
        file_key = hashlib.sha256(chosen.path.encode()).hexdigest()[:12]
        folder = blobs_dir(store.root) / f".hf-{name.namespace}--{name.model}-{file_key}-partial"
        try:
            path = yield from _download(api, repo, revision, chosen, folder, status, digest)
            yield Progress("verifying sha256 digest")
            info, weights = _checked(store, path, chosen, digest)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    manifest = store.weights_manifest(info, weights)
    config = manifest.config
    yield Progress(
        f"pulling {short_digest(config.digest)}", config.digest, config.size, config.size
    )
    yield from write_manifest(store, name, manifest.to_json(), prune=prune)
    yield Progress("success")
