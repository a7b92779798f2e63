"""The one place that turns exceptions into statuses and error bodies.

Handlers raise typed exceptions (from storage, runtime or :class:`ApiError`);
this module looks the status up by the exception's MRO. A few messages depend
on the route, because Ollama words "not found" differently on ``/api/generate``,
``/api/embed`` and ``/api/show``; :class:`Route` names those flavours.

Two envelopes share that mapping: Ollama's ``{"error": "text"}`` for the native
routes, and OpenAI's ``{"error": {"message", "type", "param", "code"}}`` for
``/v1``, whose ``type`` the OpenAI SDKs copy onto the exception they raise.
"""

from __future__ import annotations

import enum
import logging

from fastapi.responses import JSONResponse

from llamaport.runtime.errors import (
    BadRequest,
    EngineError,
    LlamaportError,
    RequestCanceled,
    ServerBusy,
    ShuttingDown,
)
from llamaport.runtime.proxy.errors import NoUpstreamLeft, UpstreamError, UpstreamTimeout
from llamaport.storage.conversations import (
    ConversationNotFound,
    ItemNotFound,
    ResponseNotFound,
)
from llamaport.storage.errors import (
    BlobNotFound,
    BlobTooLarge,
    ConversationStoreUnavailable,
    CreateError,
    DigestMismatch,
    InsufficientStorage,
    InvalidDigest,
    InvalidGGUF,
    InvalidModelName,
    ModelNotFound,
    StorageError,
)
from llamaport.storage.modelfile import ModelfileError
from llamaport.storage.names import parse_name
from llamaport.storage.registry.errors import (
    InsecureProtocol,
    ManifestNotFound,
    RegistryError,
    RegistryUnauthorized,
)

__all__ = [
    "ApiError",
    "Route",
    "error_body",
    "error_response",
    "error_response_for",
    "openai_error_body",
    "openai_error_response",
    "status_and_message",
]

log = logging.getLogger("llamaport")


class Route(enum.Enum):
    GENERATE = "generate"
    EMBED = "embed"
    SHOW = "show"


class ApiError(Exception):
    """An error found by a route itself, with the exact status and text to send."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        """The request field at fault, for OpenAI's envelope (``messages[0].role``)."""
        self.code = code
        """OpenAI's machine-readable ``code`` (``invalid_api_key``), else None."""
        self.headers = headers or {}


def _not_found(exc: ModelNotFound, route: Route) -> str:
    if route is Route.EMBED:
        return f'model "{exc.name}" not found, try pulling it first'
    if route is Route.SHOW:
        try:
            return f"model '{parse_name(exc.name).display_shortest()}' not found"
        except InvalidModelName:
            return f"model '{exc.name}' not found"
    return f"model '{exc.name}' not found"


_STATUS: list[tuple[type[Exception], int]] = [
    (InvalidModelName, 400),
    (ModelNotFound, 404),
    (ConversationNotFound, 404),
    (ConversationStoreUnavailable, 503),
    (ItemNotFound, 404),
    (ResponseNotFound, 404),
    (ModelfileError, 400),
    (InvalidDigest, 400),
    (DigestMismatch, 400),
    (InvalidGGUF, 400),
    (BlobNotFound, 400),
    (BlobTooLarge, 413),
    (InsufficientStorage, 507),
    (CreateError, 400),
    (InsecureProtocol, 400),
    (ManifestNotFound, 404),
    (RegistryUnauthorized, 401),
    (RegistryError, 502),
    (ServerBusy, 503),
    (UpstreamTimeout, 504),
    (UpstreamError, 502),
    (NoUpstreamLeft, 502),
    (ShuttingDown, 503),
    (RequestCanceled, 499),
    (BadRequest, 400),
    (EngineError, 500),
    (StorageError, 500),
    (LlamaportError, 500),
]


def _encodable(text: str) -> str:
    """``text`` with what UTF-8 cannot carry (lone surrogates from a client's
    ``\\ud800``) escaped, so writing an error body can never fail itself."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _status_and_text(exc: BaseException, route: Route) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, ModelNotFound):
        return 404, _not_found(exc, route)
    for kind in type(exc).__mro__:
        for known, status in _STATUS:
            if kind is known:
                return status, str(exc)
    log.exception("unexpected error", exc_info=exc)
    return 500, f"internal error: {type(exc).__name__}"


def status_and_message(exc: BaseException, route: Route = Route.GENERATE) -> tuple[int, str]:
    """The status and the text to send; the text always encodes as UTF-8."""
    status, message = _status_and_text(exc, route)
    return status, _encodable(message)


def error_body(exc: BaseException, route: Route = Route.GENERATE) -> dict[str, str]:
    return {"error": status_and_message(exc, route)[1]}


def _headers(exc: BaseException) -> dict[str, str] | None:
    return exc.headers if isinstance(exc, ApiError) else None


def error_response(exc: BaseException, route: Route = Route.GENERATE) -> JSONResponse:
    status, message = status_and_message(exc, route)
    return JSONResponse({"error": message}, status_code=status, headers=_headers(exc))


_OPENAI_TYPES = {
    400: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


_OPENAI_BUSY = 429
"""A full queue on ``/v1``: OpenAI's rate-limit status, which the SDKs retry with
back-off (Ollama's native routes answer 503, as Ollama does)."""


def _openai(exc: BaseException) -> tuple[int, dict[str, dict[str, str | None]]]:
    status, message = status_and_message(exc)
    param = _encodable(exc.param) if isinstance(exc, ApiError) and exc.param else None
    code = exc.code if isinstance(exc, ApiError) else None
    if isinstance(exc, ServerBusy):
        status, code = _OPENAI_BUSY, "rate_limit_exceeded"
    kind = _OPENAI_TYPES.get(status, "api_error")
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error_body(exc: BaseException) -> dict[str, dict[str, str | None]]:
    """OpenAI's envelope; the SDK copies ``type`` and ``param`` onto its exception."""
    return _openai(exc)[1]


def openai_error_response(exc: BaseException) -> JSONResponse:
    """Status plus OpenAI's envelope; the SDK retries none of the 4xx statuses sent."""
    status, body = _openai(exc)
    return JSONResponse(body, status_code=status, headers=_headers(exc))


def _route_for(path: str) -> Route:
    if path.startswith("/api/embed"):
        return Route.EMBED
    if path == "/api/show":
        return Route.SHOW
    return Route.GENERATE


def error_response_for(path: str, exc: BaseException) -> JSONResponse:
    """The error in the envelope of the route at ``path``: OpenAI's under ``/v1/``."""
    if path.startswith("/v1/"):
        return openai_error_response(exc)
    return error_response(exc, _route_for(path))
