"""Retrieval-augmented generation with LlamaIndex: a VectorStoreIndex built
with ``LlamaportEmbedding`` and queried with ``Llamaport``.

    pip install "llamaport[llama-index]"
    LLAMAPORT_URL=http://127.0.0.1:11434 python examples/llamaindex_rag.py
"""

from __future__ import annotations

import os

from llama_index.core import Document, VectorStoreIndex

from llamaport.integrations.llama_index import Llamaport, LlamaportEmbedding

BASE_URL = os.environ.get("LLAMAPORT_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LLAMAPORT_MODEL", "smollm2:135m")

FACTS = [
    "Llamas were domesticated in the Andes about 4,500 years ago.",
    "An adult llama weighs between 130 and 200 kilograms.",
    "Alpacas are smaller than llamas and are bred for their fibre.",
    "Llamas communicate by humming.",
]


def main() -> None:
    embed_model = LlamaportEmbedding(model_name=MODEL, base_url=BASE_URL)
    index = VectorStoreIndex.from_documents(
        [Document(text=f) for f in FACTS], embed_model=embed_model
    )
    llm = Llamaport(model=MODEL, base_url=BASE_URL, temperature=0, max_tokens=48)
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    response = engine.query("How much does a llama weigh?")
    print("retrieved:", [n.node.get_content() for n in response.source_nodes])
    print("answer:", response)


if __name__ == "__main__":
    main()
