"""Errors of talking to a registry (OCI distribution or Hugging Face).

They extend :class:`~llamaport.storage.errors.StorageError`; only
``llamaport.compat.errors`` turns them into statuses. Messages are Ollama's
where Ollama has one, since clients show them verbatim::

    RegistryError               the registry failed or refused ("<what>: <code>: <body>")
    ├── ManifestNotFound        "pull model manifest: file does not exist"
    │   └── QuantizationNotFound  no GGUF in a Hugging Face repo matches the tag
    ├── InsecureProtocol        "insecure protocol http" (http:// without insecure)
    ├── RegistryUnauthorized    401/403 even after answering the auth challenge
    └── BlobDigestMismatch      downloaded bytes do not hash to the layer's digest
"""

from __future__ import annotations

from llamaport.storage.errors import StorageError

__all__ = [
    "BlobDigestMismatch",
    "InsecureProtocol",
    "ManifestNotFound",
    "QuantizationNotFound",
    "RegistryError",
    "RegistryUnauthorized",
]


class RegistryError(StorageError):
    """The registry answered with an error, or could not be reached."""


class ManifestNotFound(RegistryError):
    """The registry has no such model (HTTP 404 on the manifest)."""

    def __init__(self, message: str = "pull model manifest: file does not exist") -> None:
        super().__init__(message)


class QuantizationNotFound(ManifestNotFound):
    """A Hugging Face repository has no GGUF file for the requested tag."""

    def __init__(self, repo: str, tag: str, available: list[str]) -> None:
        listed = ", ".join(available) if available else "none"
        super().__init__(f'{repo} has no GGUF file for tag "{tag}" (available: {listed})')


class InsecureProtocol(RegistryError):
    """An ``http://`` model name was used without ``insecure: true``."""

    def __init__(self) -> None:
        super().__init__("insecure protocol http")


class RegistryUnauthorized(RegistryError):
    """The registry refused the credentials (or their absence)."""


class BlobDigestMismatch(RegistryError):
    """A downloaded blob hashed differently from its digest; it was deleted."""

    def __init__(self, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"digest mismatch, file must be downloaded again: want {expected}, got {got}"
        )
