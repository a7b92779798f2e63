"""Pull and push models: OCI distribution registries and the Hugging Face Hub.

:func:`pull_model` and :func:`push_model` are generators of :class:`Progress`
events, Ollama's status lines. They block (run them in a thread) and stop
cleanly when closed early: a pull keeps what it downloaded for the next try.
"""

from __future__ import annotations

from collections.abc import Iterator

from llamaport.storage.names import parse_name
from llamaport.storage.progress import Progress, short_digest
from llamaport.storage.registry.client import RegistryClient, registry_base_url
from llamaport.storage.registry.download import (
    PARTIAL_SUFFIX,
    STATE_SUFFIX,
    pull_from_registry,
)
from llamaport.storage.registry.errors import (
    BlobDigestMismatch,
    InsecureProtocol,
    ManifestNotFound,
    QuantizationNotFound,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from llamaport.storage.registry.huggingface import (
    DEFAULT_QUANT,
    HF_HOSTS,
    GGUFFile,
    choose_gguf,
    is_huggingface,
    pull_from_huggingface,
)
from llamaport.storage.registry.upload import push_to_registry
from llamaport.storage.settings import Settings
from llamaport.storage.store import Store

__all__ = [
    "DEFAULT_QUANT",
    "HF_HOSTS",
    "PARTIAL_SUFFIX",
    "STATE_SUFFIX",
    "BlobDigestMismatch",
    "GGUFFile",
    "InsecureProtocol",
    "ManifestNotFound",
    "Progress",
    "QuantizationNotFound",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorized",
    "RegistryUnreachable",
    "choose_gguf",
    "is_huggingface",
    "pull_from_huggingface",
    "pull_from_registry",
    "pull_model",
    "push_model",
    "push_to_registry",
    "registry_base_url",
    "short_digest",
]


def pull_model(
    store: Store, model: str, settings: Settings, *, insecure: bool = False
) -> Iterator[Progress]:
    """Pull ``model`` (a registry name or ``hf.co/<org>/<repo>[:<quant>]``) into ``store``.

    Raises ``InvalidModelName`` before yielding anything for a bad name.
    """
    name = parse_name(model)
    if is_huggingface(name):
        return pull_from_huggingface(
            store,
            name,
            endpoint=settings.hf_endpoint,
            token=settings.hf_token,
            prune=not settings.noprune,
        )
    registry_base_url(name, insecure)
    return pull_from_registry(
        store,
        name,
        insecure=insecure,
        basic_auth=settings.registry_auth,
        prune=not settings.noprune,
    )


def push_model(
    store: Store, model: str, settings: Settings, *, insecure: bool = False
) -> Iterator[Progress]:
    """Push the local ``model`` to the registry its name points at."""
    name = parse_name(model)
    registry_base_url(name, insecure)
    return push_to_registry(store, name, insecure=insecure, basic_auth=settings.registry_auth)
