"""One model's repository on an OCI distribution registry: URLs, auth, retries.

Authentication follows the distribution token protocol: a request that gets
``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` fetches a
token from the realm and is sent again once with ``Authorization: Bearer``.
A ``Basic`` challenge is answered with ``LLAMAPORT_REGISTRY_AUTH``, which is
also offered to the token realm (as ``docker login`` does). Credentials are
never sent before a challenge asks for them, and never to a realm on another
host over plain HTTP.

Idempotent requests (``GET``, ``HEAD``) are retried on connection errors and
on ``429``/``5xx`` with exponential back-off; uploads retry at the level of
their chunk, where the offset is known.
"""

from __future__ import annotations

import base64
import platform
import re
import threading
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from llamaport.storage.names import Name
from llamaport.storage.registry.errors import (
    InsecureProtocol,
    ManifestNotFound,
    RegistryError,
    RegistryUnauthorized,
    transport_failure,
)

__all__ = [
    "RETRY_ATTEMPTS",
    "RegistryClient",
    "TransientError",
    "checked_answer",
    "error_text",
    "http_client",
    "is_transient",
    "registry_base_url",
    "retrying",
    "with_retries",
]

T = TypeVar("T")

RETRY_ATTEMPTS = 5
_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
"""A read that stalls this long fails and is retried (Ollama's stall detection)."""
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_USER_AGENT = (
    f"llamaport ({platform.machine().lower()} {platform.system().lower()}) "
    f"Python/{platform.python_version()}"
)


class TransientError(RegistryError):
    """A ``429`` or ``5xx`` answer, worth trying again."""


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may go away on its own: network trouble or a busy server."""
    return isinstance(exc, httpx.TransportError | TransientError)


def retrying(attempts: int = RETRY_ATTEMPTS) -> Retrying:
    """The retry policy for registry traffic; the last error is re-raised as is."""
    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.25, max=4.0),
        retry=retry_if_exception(is_transient),
        reraise=True,
    )


def http_client() -> httpx.Client:
    """The HTTP client of registry and Hub traffic: timeouts, user agent, redirects."""
    return httpx.Client(
        timeout=_TIMEOUT, headers={"User-Agent": _USER_AGENT}, follow_redirects=True
    )


def registry_base_url(name: Name, insecure: bool) -> str:
    """``https://host`` for a model name, or ``http://host`` with ``insecure``.

    A name that spells ``http://`` itself needs ``insecure`` too, as in
    Ollama; ``insecure`` turns any name into plain HTTP.
    """
    if name.scheme == "http" and not insecure:
        raise InsecureProtocol()
    return f"{'http' if insecure else 'https'}://{name.host}"


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def error_text(response: httpx.Response) -> str:
    """Ollama's ``<code>: <body>`` shape for an unexpected answer (reads the body)."""
    body = response.read().decode("utf-8", errors="replace").strip()
    return f"{response.status_code}: {body}" if body else str(response.status_code)


class RegistryClient:
    """Requests against ``/v2/<namespace>/<model>/`` of the registry ``name`` lives on.

    Thread-safe: parallel part downloads share one client and one token.
    Close it (or use it as a context manager) to release connections.
    """

    def __init__(
        self,
        name: Name,
        *,
        insecure: bool = False,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = registry_base_url(name, insecure)
        self.repository = f"{name.namespace}/{name.model}"
        self._basic = basic_auth
        self._authorization: str | None = None
        self._lock = threading.Lock()
        self.http = http_client()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str, repository: str | None = None) -> str:
        """``<base>/v2/<repository>/<path>``; ``path`` like ``manifests/latest``."""
        return f"{self.base_url}/v2/{repository or self.repository}/{path}"

    # -- requests --------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send once, answering one auth challenge; the caller checks the status.

        ``5xx`` and ``429`` raise a transient error so :func:`retrying` can
        repeat the call. A streamed response must be closed by the caller.
        """
        response = self._send_authorized(method, url, headers, params, content, stream)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            self._answer(challenge, url)
            response = self._send_authorized(method, url, headers, params, content, stream)
        return checked_answer(response)

    def call(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """:meth:`send` with retries; for idempotent, non-streamed requests."""
        return with_retries(lambda: self.send(method, url, headers=headers, params=params))

    def _send_authorized(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        params: dict[str, str] | None,
        content: bytes | None,
        stream: bool,
    ) -> httpx.Response:
        merged = dict(headers or {})
        if self._authorization and _same_host(url, self.base_url):
            merged["Authorization"] = self._authorization
        request = self.http.build_request(
            method, url, headers=merged, params=params, content=content
        )
        return self.http.send(request, stream=stream)

    # -- auth ------------------------------------------------------------------

    def _answer(self, challenge: str, url: str) -> None:
        scheme, params = _parse_challenge(challenge)
        if scheme == "bearer" and params.get("realm"):
            token = self._token(params)
            with self._lock:
                self._authorization = f"Bearer {token}"
        elif scheme == "basic" and self._basic is not None:
            with self._lock:
                self._authorization = _basic_header(self._basic)
        else:
            raise RegistryUnauthorized(f"401: {url} needs credentials (LLAMAPORT_REGISTRY_AUTH)")

    def _token(self, challenge: dict[str, str]) -> str:
        realm = challenge["realm"]
        query = {k: v for k, v in challenge.items() if k in ("service", "scope")}
        headers: dict[str, str] = {}
        if self._basic is not None and (
            urlsplit(realm).scheme == "https" or _same_host(realm, self.base_url)
        ):
            headers["Authorization"] = _basic_header(self._basic)
        try:
            response = with_retries(lambda: self.http.get(realm, params=query, headers=headers))
        except httpx.HTTPError as exc:
            raise transport_failure(f"token request to {realm} failed", exc, realm) from exc
        if response.status_code >= 400:
            raise RegistryUnauthorized(error_text(response))
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryUnauthorized(f"no token in the answer of {realm}")
        return token

    # -- common calls ----------------------------------------------------------

    def get_manifest(self, tag: str, accept: str) -> bytes:
        """The manifest bytes exactly as served; ``ManifestNotFound`` on 404."""
        try:
            response = self.call("GET", self.url(f"manifests/{tag}"), headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise transport_failure("pull model manifest", exc, self.base_url) from exc
        if response.status_code == 404:
            raise ManifestNotFound()
        if response.status_code >= 400:
            raise RegistryError(f"pull model manifest: {error_text(response)}")
        return response.content

    def blob_exists(self, digest: str, repository: str | None = None) -> int | None:
        """The blob's size if the repository has it, else None (``HEAD``)."""
        response = self.call("HEAD", self.url(f"blobs/{digest}", repository))
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise RegistryError(f"check blob {digest}: {error_text(response)}")
        return int(response.headers.get("Content-Length") or 0)


def checked_answer(response: httpx.Response) -> httpx.Response:
    """``response``, unless it refuses (401/403: ``RegistryUnauthorized``) or is worth
    trying again (429, 5xx: ``TransientError``, which :func:`retrying` repeats)."""
    if response.status_code in (401, 403):
        raise RegistryUnauthorized(error_text(response))
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(error_text(response))
    return response


def with_retries(fn: Callable[[], T]) -> T:
    """Run ``fn`` under :func:`retrying`."""
    for attempt in retrying():
        with attempt:
            return fn()
    raise AssertionError("unreachable: tenacity re-raises the last error")


def _basic_header(credentials: tuple[str, str]) -> str:
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _same_host(url: str, base_url: str) -> bool:
    return urlsplit(url).netloc.lower() == urlsplit(base_url).netloc.lower()
