"""The client side of llamaport's native API, shared by the CLI and the integrations.

It imports no server layer (storage, runtime, compat), so it runs where only
the client is installed. :class:`Client` is the CLI's typed, synchronous
client; :class:`Transport` the integrations' retrying sync/async transport.
Both read error bodies and NDJSON lines one way and raise one error tree
(:class:`ClientError`, :class:`ConnectError`, :class:`ResponseError`).
"""

from __future__ import annotations

from llamaport.client._client import Client, Stream
from llamaport.client._errors import (
    ClientError,
    ConnectError,
    JSONObject,
    ResponseError,
    decode_line,
    error_message,
)
from llamaport.client._transport import DEFAULT_BASE_URL, ModelInfo, Transport

__all__ = [
    "DEFAULT_BASE_URL",
    "Client",
    "ClientError",
    "ConnectError",
    "JSONObject",
    "ModelInfo",
    "ResponseError",
    "Stream",
    "Transport",
    "decode_line",
    "error_message",
]
