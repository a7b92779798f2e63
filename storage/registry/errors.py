"""Errors of talking to a registry (OCI distribution or Hugging Face).

They extend :class:`~llamaport.storage.errors.StorageError`; only
``llamaport.compat.errors`` turns them into statuses. Messages are Ollama's
where Ollama has one, since clients show them verbatim::

    RegistryError               the registry failed or refused ("<what>: <code>: <body>")
    ├── ManifestNotFound        "pull model manifest: file does not exist"
    │   └── QuantizationNotFound  no GGUF in a Hugging Face repo matches the tag
    ├── InsecureProtocol        "insecure protocol http" (http:// without insecure)
    ├── RegistryUnreachable     "could not reach <host>: <cause in plain words>"
    ├── RegistryUnauthorized    401/403 even after answering the auth challenge
    └── BlobDigestMismatch      downloaded bytes do not hash to the layer's digest
"""

from __future__ import annotations

import errno
import socket
import ssl
from urllib.parse import urlsplit

from llamaport.storage.errors import StorageError

__all__ = [
    "BlobDigestMismatch",
    "InsecureProtocol",
    "ManifestNotFound",
    "QuantizationNotFound",
    "RegistryError",
    "RegistryUnauthorized",
    "RegistryUnreachable",
    "transport_failure",
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


class RegistryUnreachable(RegistryError):
    """The network failed between us and the registry: no name, no route, refused, TLS, time."""

    def __init__(self, host: str, cause: str) -> None:
        self.host = host
        self.cause = cause
        super().__init__(f"could not reach {host}: {cause}")


_ERRNO_CAUSES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out",
}


def _plain_cause(exc: BaseException) -> str | None:
    """What one exception in a failure's chain says, in plain words, or None if nothing."""
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "WRONG_VERSION_NUMBER":
            return "it answers plain HTTP, not HTTPS (use insecure for a plain-HTTP registry)"
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_CAUSES:
        return _ERRNO_CAUSES[exc.errno]
    return None


def transport_failure(what: str, exc: BaseException, url: str) -> RegistryError:
    """The error to raise for ``exc``, a failed exchange with ``url`` while doing ``what``.

    A network failure anywhere in the exception's chain (httpx wraps httpcore,
    which wraps the socket's own error) becomes :class:`RegistryUnreachable`
    naming the host; anything else keeps its text after ``what``.
    """
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            break
        cause = _plain_cause(seen)
        if cause is not None:
            return RegistryUnreachable(urlsplit(url).netloc or url, cause)
        seen = seen.__cause__ or seen.__context__
    return RegistryError(f"{what}: {exc}")
