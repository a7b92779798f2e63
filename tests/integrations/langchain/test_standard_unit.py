"""langchain-tests' unit suites for our classes: no server needed (the URL is a closed port)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from llamaport.integrations.langchain import ChatLlamaport, LlamaportEmbeddings
from tests.integrations.conftest import MODEL, NO_SERVER


class TestChatLlamaportUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatLlamaport]:
        return ChatLlamaport

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "base_url": NO_SERVER}

    @property
    def supports_json_mode(self) -> bool:
        return True


class TestLlamaportEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LlamaportEmbeddings]:
        return LlamaportEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "base_url": NO_SERVER}
