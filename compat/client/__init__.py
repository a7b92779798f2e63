"""The client side of llamaport's native API, shared by the CLI and the integrations.

It imports no server layer (storage, runtime, or the rest of compat), so it
runs where only the client is installed; the server imports its request
models (:mod:`._requests`), as Ollama's server and client share ``api/``.
:class:`Client` is the one client, sync and async, with retries; it sends
those request bodies and returns the typed answers of :mod:`._responses`,
and raises one error tree (:class:`ClientError`, :class:`ConnectError`,
:class:`ResponseError`).
"""

from __future__ import annotations

from llamaport.compat.client._client import DEFAULT_BASE_URL, Client, ModelInfo, Stream
from llamaport.compat.client._errors import (
    ClientError,
    ConnectError,
    JSONObject,
    ResponseError,
    decode_line,
    error_message,
)
from llamaport.compat.client._requests import (
    ChatBody,
    CopyBody,
    CreateBody,
    DeleteBody,
    DetokenizeBody,
    EmbedBody,
    EmbeddingsBody,
    GenerateBody,
    MessageBody,
    RegistryBody,
    ShowBody,
    TokenizeBody,
)
from llamaport.compat.client._responses import (
    ChatChunk,
    ChatMessage,
    EmbedResponse,
    GenerateChunk,
    Metrics,
    ModelDetails,
    ModelEntry,
    ProgressLine,
    PsResponse,
    RunningModel,
    ShowResponse,
    TagsResponse,
    ToolCall,
    ToolCallFunction,
    VersionResponse,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ChatBody",
    "ChatChunk",
    "ChatMessage",
    "Client",
    "ClientError",
    "ConnectError",
    "CopyBody",
    "CreateBody",
    "DeleteBody",
    "DetokenizeBody",
    "EmbedBody",
    "EmbedResponse",
    "EmbeddingsBody",
    "GenerateBody",
    "GenerateChunk",
    "JSONObject",
    "MessageBody",
    "Metrics",
    "ModelDetails",
    "ModelEntry",
    "ModelInfo",
    "ProgressLine",
    "PsResponse",
    "RegistryBody",
    "ResponseError",
    "RunningModel",
    "ShowBody",
    "ShowResponse",
    "Stream",
    "TagsResponse",
    "TokenizeBody",
    "ToolCall",
    "ToolCallFunction",
    "VersionResponse",
    "decode_line",
    "error_message",
]
