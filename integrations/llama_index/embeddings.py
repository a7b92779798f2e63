"""``LlamaportEmbedding``: LlamaIndex embeddings over native ``/api/embed``, batched."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field

from llamaport.integrations._native import drop_none
from llamaport.integrations.llama_index._base import Connection

__all__ = ["LlamaportEmbedding"]


class LlamaportEmbedding(Connection, BaseEmbedding):
    """Embed with a llamaport (or Ollama) server; ``embed_batch_size`` texts per request.

    ```python
    from llamaport.integrations.llama_index import LlamaportEmbedding

    embed = LlamaportEmbedding(model_name="smollm2:135m")
    embed.get_text_embedding_batch(["llamas", "alpacas"])
    ```
    """

    embed_batch_size: int = Field(default=64, gt=0, le=2048, description="Texts per request.")
    dimensions: int | None = Field(default=None, description="Truncate vectors to this size.")
    query_instruction: str | None = Field(default=None, description="Prefix for queries.")
    text_instruction: str | None = Field(default=None, description="Prefix for documents.")

    @classmethod
    def class_name(cls) -> str:
        return "LlamaportEmbedding"

    def _body(self, texts: list[str], instruction: str | None) -> dict[str, Any]:
        prefix = f"{instruction.strip()} " if instruction else ""
        return drop_none(
            {
                "model": self.model_name,
                "input": [prefix + t for t in texts],
                "dimensions": self.dimensions,
                "keep_alive": self.keep_alive,
            }
        )

    def _embed(self, texts: list[str], instruction: str | None) -> list[list[float]]:
        return self._http().embed(self._body(texts, instruction)).embeddings

    async def _aembed(self, texts: list[str], instruction: str | None) -> list[list[float]]:
        return (await self._http().aembed(self._body(texts, instruction))).embeddings

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query], self.query_instruction)[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed([query], self.query_instruction))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text], self.text_instruction)[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed([text], self.text_instruction))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, self.text_instruction)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(texts, self.text_instruction)
