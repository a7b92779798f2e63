"""The client's errors, and reading error bodies and NDJSON lines.

Exceptions::

    ClientError          anything that went wrong talking to the server
    ├── ConnectError     nothing answered at the base URL (also an
    │                    ``httpx.ConnectError``, as the integrations raised before)
    └── ResponseError    the server answered with an error: a status >= 400,
                         or an in-band ``{"error": ...}`` line mid-stream
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = [
    "ClientError",
    "ConnectError",
    "JSONObject",
    "ResponseError",
    "decode_line",
    "error_message",
]

JSONObject = dict[str, Any]
"""One decoded JSON object, as the native API sends and receives them."""


class ClientError(Exception):
    """Base of every error the client raises."""


class ConnectError(ClientError, httpx.ConnectError):
    """Nothing answered at the base URL (refused, unreachable or timed out)."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"could not connect to {base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ResponseError(ClientError):
    """The server reported an error.

    ``status`` (also ``status_code``, the name Ollama's and OpenAI's clients
    use) is the HTTP status; it is that of the stream (200) for an error that
    arrived as an in-band NDJSON line after the stream had started.
    ``message`` is the server's ``error`` text, or the raw body when the body
    was not JSON.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def status_code(self) -> int:
        return self.status


def error_message(body: bytes | str) -> str:
    """``error`` of an error body: ``{"error": "..."}`` (native) or
    ``{"error": {"message": ...}}`` (``/v1``); else the raw text."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        return text or "unknown error"
    if isinstance(decoded, dict):
        error = decoded.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return text


def decode_line(line: str, status: int) -> JSONObject | None:
    """One NDJSON object, or ``None`` for a blank line; an in-band error or a
    line that is no JSON object raises :class:`ResponseError`."""
    if not line.strip():
        return None
    try:
        decoded = json.loads(line)
    except ValueError as exc:
        raise ResponseError(status, line) from exc
    if not isinstance(decoded, dict):
        raise ResponseError(status, line)
    error = decoded.get("error")
    if error:
        raise ResponseError(status, str(error))
    return decoded
