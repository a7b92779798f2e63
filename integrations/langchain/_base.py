"""What the three LangChain classes share: where the server is, how to sample,
and relaying a stream to LangChain's callbacks.

``ChatLlamaport`` and ``LlamaportLLM`` mix in :class:`Generating`;
``LlamaportEmbeddings`` only :class:`Connection`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from pydantic import BaseModel, PrivateAttr, SecretStr, model_validator

from llamaport.compat.client import DEFAULT_BASE_URL, ChatChunk, Client, GenerateChunk
from llamaport.integrations._native import drop_none

__all__ = ["PROVIDER", "Connection", "Generating", "Sampling", "arelay", "relay"]

PROVIDER = "llamaport"
"""``ls_provider`` in traces and ``model_provider`` in response metadata."""

C = TypeVar("C", GenerationChunk, ChatGenerationChunk)
P = TypeVar("P", GenerateChunk, ChatChunk)

_OPTIONS = ("temperature", "top_p", "top_k", "seed", "num_ctx", "repeat_penalty")
"""Fields sent in native ``options`` under their own names (``max_tokens`` is ``num_predict``)."""


class Connection(BaseModel):
    model: str
    """The model name, e.g. ``smollm2:135m``; a call may override it with ``model=``."""
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    """Sent as ``Authorization: Bearer``, for a server behind an authenticating proxy."""
    headers: dict[str, str] | None = None
    timeout: float | None = None
    """Seconds for connecting and for each read; None waits as long as a generation takes."""
    max_retries: int = 2
    """Retries on connection errors and ``503`` (queue full, model loading) only."""
    keep_alive: int | str | None = None

    _client: Client | None = PrivateAttr(default=None)

    def _http(self) -> Client:
        if self._client is None:
            self._client = self._connect(self.timeout, self.max_retries)
        return self._client

    def _connect(self, timeout: float | None, max_retries: int) -> Client:
        return Client(
            self.base_url,
            api_key=self.api_key.get_secret_value() if self.api_key is not None else "",
            headers=self.headers,
            timeout=timeout,
            max_retries=max_retries,
        )


class Sampling(BaseModel):
    temperature: float | None = None
    max_tokens: int | None = None
    """Sent as ``num_predict``."""
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    num_ctx: int | None = None
    repeat_penalty: float | None = None
    stop: list[str] | None = None
    options: dict[str, Any] | None = None
    """Any other native option, e.g. ``{"mirostat": 2}``; named fields win over it."""
    format: str | dict[str, Any] | None = None
    """``"json"`` or a JSON schema: decoding is constrained to it."""
    reasoning: bool | str | None = None
    """Sent as native ``think`` (``True``/``False`` or ``"low"``/``"medium"``/``"high"``)."""

    @model_validator(mode="before")
    @classmethod
    def _think_alias(cls, values: Any) -> Any:
        """``think=`` is Ollama's name for ``reasoning=``."""
        if isinstance(values, dict) and "think" in values:
            values = dict(values)
            values.setdefault("reasoning", values.pop("think"))
        return values

    def _sampling_params(self) -> dict[str, Any]:
        """The set sampling fields, for ``_identifying_params``."""
        return drop_none({k: getattr(self, k) for k in (*_OPTIONS, "max_tokens", "stop")})

    def _inference_body(
        self, model: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Model, options, think, format and keep_alive; per-call ``kwargs`` win.

        Consumes the keys it understands from ``kwargs``.
        """
        named = {k: kwargs.pop(k, getattr(self, k)) for k in _OPTIONS}
        named["num_predict"] = kwargs.pop("max_tokens", self.max_tokens)
        named["stop"] = stop if stop is not None else kwargs.pop("stop", self.stop)
        options = {**(self.options or {}), **drop_none(named), **kwargs.pop("options", {})}
        think = kwargs.pop("reasoning", kwargs.pop("think", self.reasoning))
        return drop_none(
            {
                "model": kwargs.pop("model", model),
                "options": options,
                "think": think,
                "format": kwargs.pop("format", self.format) or None,
                "keep_alive": kwargs.pop("keep_alive", getattr(self, "keep_alive", None)),
            }
        )


class Generating(Connection, Sampling):
    """The chat model's and the LLM's common ground."""

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        """Model, server and sampling: what makes two instances answer alike (cache keys)."""
        return {"model": self.model, "base_url": self.base_url, **self._sampling_params()}


def relay(
    parts: Iterator[P],
    convert: Callable[[P], C],
    run_manager: CallbackManagerForLLMRun | None,
) -> Iterator[C]:
    """Each native chunk as a LangChain chunk, announced to the callbacks first."""
    for part in parts:
        chunk = convert(part)
        if run_manager:
            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        yield chunk


async def arelay(
    parts: AsyncIterator[P],
    convert: Callable[[P], C],
    run_manager: AsyncCallbackManagerForLLMRun | None,
) -> AsyncIterator[C]:
    async for part in parts:
        chunk = convert(part)
        if run_manager:
            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        yield chunk
