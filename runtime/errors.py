"""Typed errors raised by the runtime.

Each names a condition, never a status code: ``llamaport.compat.errors`` alone
maps them (by MRO) onto HTTP statuses and protocol envelopes.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "EngineCrashed",
    "EngineError",
    "InputTooLong",
    "LlamaportError",
    "ModelLoadFailed",
    "PromptTooLong",
    "RequestCanceled",
    "ServerBusy",
    "ShuttingDown",
]


class LlamaportError(Exception):
    """Base of every error the runtime raises on purpose."""


class BadRequest(LlamaportError):
    """The request is malformed or asks for something impossible (a 400)."""


class PromptTooLong(BadRequest):
    def __init__(self, n_tokens: int, n_ctx: int) -> None:
        self.n_tokens = n_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt is too long: {n_tokens} tokens exceed the context length of {n_ctx}; "
            "raise num_ctx or shorten the prompt"
        )


class InputTooLong(BadRequest):
    def __init__(self) -> None:
        super().__init__("the input length exceeds the context length")


class ServerBusy(LlamaportError):
    def __init__(self) -> None:
        super().__init__("server busy, please try again.  maximum pending requests exceeded")


class ShuttingDown(LlamaportError):
    """The server is stopping and this request outlived the grace period."""

    def __init__(self, grace: float) -> None:
        super().__init__(
            f"server shutting down: the request did not finish within {grace:g}s "
            "(LLAMAPORT_SHUTDOWN_GRACE)"
        )


class RequestCanceled(LlamaportError):
    def __init__(self) -> None:
        super().__init__("request canceled")


class EngineError(LlamaportError):
    """The engine process failed a request (a server-side fault)."""


class EngineCrashed(EngineError):
    """The engine process died; the scheduler restarts it on the next request."""


class ModelLoadFailed(EngineError):
    pass
