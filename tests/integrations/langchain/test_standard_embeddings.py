"""langchain-tests' embeddings integration suite against the live server."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from llamaport.integrations.langchain import LlamaportEmbeddings
from tests.integrations.conftest import MODEL, Live

pytestmark = pytest.mark.usefixtures("live")


class TestLlamaportEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LlamaportEmbeddings]:
        return LlamaportEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "base_url": Live.url}
