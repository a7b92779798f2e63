"""Where the server is, shared by ``Llamaport`` and ``LlamaportEmbedding``."""

from __future__ import annotations

from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr

from llamaport.compat.client import DEFAULT_BASE_URL, Client

__all__ = ["Connection"]


class Connection(BaseModel):
    base_url: str = Field(default=DEFAULT_BASE_URL)
    request_timeout: float | None = Field(default=None, description="Seconds per read.")
    max_retries: int = Field(default=2, description="On connection errors and 503 only.")
    headers: dict[str, str] | None = Field(default=None)
    keep_alive: float | str | None = Field(default=None)

    _client: Client | None = PrivateAttr(default=None)

    def _http(self) -> Client:
        if self._client is None:
            self._client = Client(
                self.base_url,
                headers=self.headers,
                timeout=self.request_timeout,
                max_retries=self.max_retries,
            )
        return self._client
