"""Where the server is, shared by ``Llamaport`` and ``LlamaportEmbedding``."""

from __future__ import annotations

from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr

from llamaport.client import DEFAULT_BASE_URL, Transport

__all__ = ["Connection"]


class Connection(BaseModel):
    base_url: str = Field(default=DEFAULT_BASE_URL)
    request_timeout: float | None = Field(default=None, description="Seconds per read.")
    max_retries: int = Field(default=2, description="On connection errors and 503 only.")
    headers: dict[str, str] | None = Field(default=None)
    keep_alive: float | str | None = Field(default=None)

    _transport: Transport | None = PrivateAttr(default=None)

    def _http(self) -> Transport:
        if self._transport is None:
            self._transport = Transport(
                self.base_url,
                timeout=self.request_timeout,
                max_retries=self.max_retries,
                headers=self.headers or {},
            )
        return self._transport
