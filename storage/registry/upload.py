"""Pushing a model: each blob the registry lacks, then the manifest.

For every layer (and the config) a ``HEAD`` skips blobs the repository
already has. A missing blob is first offered as a cross-repository mount
(``POST …/blobs/uploads/?mount=<digest>&from=<repo>``) from the layer's
``from`` model or any other local model of the same registry that holds it,
so pushing a copy or a derived model moves no bytes. Otherwise it is uploaded
in chunks (``PATCH`` with ``Content-Range``) and closed with
``PUT ?digest=``. The manifest goes last, with the stored bytes unchanged,
so the registry's digest equals the local one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx

from llamaport.storage._blobs import CHUNK_SIZE
from llamaport.storage.errors import CorruptModel, InvalidModelName, ModelNotFound
from llamaport.storage.manifest import Layer
from llamaport.storage.names import Name, parse_name
from llamaport.storage.progress import Progress, short_digest
from llamaport.storage.registry.client import RegistryClient, error_text, retrying
from llamaport.storage.registry.errors import RegistryError, transport_failure
from llamaport.storage.store import Store

__all__ = ["UPLOAD_CHUNK", "push_to_registry"]

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 8 * CHUNK_SIZE


def _mount_sources(store: Store, target: Name, layer: Layer) -> list[str]:
    """Repositories on ``target``'s registry that should hold ``layer`` already."""
    found: list[str] = []
    candidates: list[Name] = []
    if layer.from_:
        with contextlib.suppress(InvalidModelName):
            candidates.append(parse_name(layer.from_))
    candidates += store.names()
    for name in candidates:
        repo = f"{name.namespace}/{name.model}"
        same_registry = name.host.lower() == target.host.lower()
        if not same_registry or repo.lower() == f"{target.namespace}/{target.model}".lower():
            continue
        if repo in found or not _holds(store, name, layer):
            continue
        found.append(repo)
    return found


def _holds(store: Store, name: Name, layer: Layer) -> bool:
    try:
        manifest, _ = store.read_manifest(name)
    except (ModelNotFound, CorruptModel):
        return False
    return any(item.digest == layer.digest for item in manifest.all_layers())


def _location(response: httpx.Response, client: RegistryClient) -> str:
    location = response.headers.get("Docker-Upload-Location") or response.headers.get("Location")
    if not location:
        raise RegistryError(f"upload: the registry sent no Location ({response.status_code})")
    return str(urljoin(client.base_url + "/", location))


def _start_upload(client: RegistryClient, layer: Layer, sources: list[str]) -> tuple[bool, str]:
    """``(True, "")`` if a mount succeeded, else ``(False, upload URL)``."""
    uploads = client.url("blobs/uploads/")
    for repo in sources:
        response = client.call("POST", uploads, params={"mount": layer.digest, "from": repo})
        if response.status_code == 201:
            log.info("mounted %s from %s into %s", layer.digest, repo, client.repository)
            return True, ""
        if response.status_code == 202:
            return False, _location(response, client)
    response = client.call("POST", uploads)
    if response.status_code != 202:
        raise RegistryError(f"start upload of {layer.digest}: {error_text(response)}")
    return False, _location(response, client)


def _upload(client: RegistryClient, store: Store, layer: Layer, url: str) -> Iterator[int]:
    """PATCH the blob in chunks, then close it with PUT; yields bytes sent so far."""
    sent = 0
    with store.blob_path(layer.digest).open("rb") as blob:
        while chunk := blob.read(UPLOAD_CHUNK):
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{sent}-{sent + len(chunk) - 1}",
            }
            response = client.send("PATCH", url, headers=headers, content=chunk)
            if response.status_code != 202:
                raise RegistryError(f"upload {layer.digest}: {error_text(response)}")
            url = _location(response, client)
            sent += len(chunk)
            yield sent
    final = httpx.URL(url).copy_merge_params({"digest": layer.digest})
    response = client.send("PUT", str(final), headers={"Content-Length": "0"})
    if response.status_code not in (201, 204):
        raise RegistryError(f"finish upload of {layer.digest}: {error_text(response)}")


def _push_blob(
    client: RegistryClient, store: Store, layer: Layer, target: Name
) -> Iterator[Progress]:
    status = f"pushing {short_digest(layer.digest)}"
    yield Progress(status, layer.digest, layer.size)
    if client.blob_exists(layer.digest) is not None:
        yield Progress(status, layer.digest, layer.size, layer.size)
        return
    for attempt in retrying():
        with attempt:
            mounted, url = _start_upload(client, layer, _mount_sources(store, target, layer))
            if not mounted:
                for sent in _upload(client, store, layer, url):
                    yield Progress(status, layer.digest, layer.size, sent)
    yield Progress(status, layer.digest, layer.size, layer.size)


def push_to_registry(
    store: Store,
    name: Name,
    *,
    insecure: bool = False,
    basic_auth: tuple[str, str] | None = None,
) -> Iterator[Progress]:
    """Push the local model ``name`` to its registry, yielding Ollama's progress.

    Raises ``ModelNotFound`` for a model that is not in the store, and the
    errors of :mod:`.errors` for the registry's refusals.
    """
    yield Progress("retrieving manifest")
    stored = store.resolve(name.display_long())
    manifest, data = store.read_manifest(stored)
    target = Name(stored.host, stored.namespace, stored.model, stored.tag, scheme=name.scheme)
    with RegistryClient(target, insecure=insecure, basic_auth=basic_auth) as client:
        try:
            for layer in [*manifest.layers, manifest.config]:
                yield from _push_blob(client, store, layer, target)
            yield Progress("pushing manifest")
            response = client.send(
                "PUT",
                client.url(f"manifests/{target.tag}"),
                headers={"Content-Type": manifest.media_type},
                content=data,
            )
        except httpx.HTTPError as exc:
            what = f"push {target.display_shortest()}"
            raise transport_failure(what, exc, client.base_url) from exc
        if response.status_code not in (200, 201):
            raise RegistryError(f"push manifest: {error_text(response)}")
    yield Progress("success")
