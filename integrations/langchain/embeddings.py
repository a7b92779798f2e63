"""``LlamaportEmbeddings``: LangChain embeddings over native ``/api/embed``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings

from llamaport.integrations._native import drop_none
from llamaport.integrations.langchain._base import Connection

__all__ = ["LlamaportEmbeddings"]


class LlamaportEmbeddings(Connection, Embeddings):
    """Embed texts with a llamaport (or Ollama) server, ``batch_size`` texts a request.

    ```python
    from llamaport.integrations.langchain import LlamaportEmbeddings

    embeddings = LlamaportEmbeddings(model="smollm2:135m")
    embeddings.embed_documents(["llamas", "alpacas"])
    ```
    """

    dimensions: int | None = None
    """Truncate each vector to this many dimensions (then re-normalized by the server)."""
    truncate: bool | None = None
    """Cut inputs longer than the context instead of failing (the server's default: true)."""
    batch_size: int = 64

    def _body(self, texts: list[str]) -> dict[str, Any]:
        return drop_none(
            {
                "model": self.model,
                "input": texts,
                "dimensions": self.dimensions,
                "truncate": self.truncate,
                "keep_alive": self.keep_alive,
            }
        )

    def _batches(self, texts: list[str]) -> list[list[str]]:
        return [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for batch in self._batches(texts):
            out += self._http().embed(self._body(batch)).embeddings
        return out

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        http = self._http()
        answers = await asyncio.gather(*(http.aembed(self._body(b)) for b in self._batches(texts)))
        return [vector for answer in answers for vector in answer.embeddings]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]
