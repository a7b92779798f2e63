"""Retrieval-augmented generation with LangChain: llamaport embeddings, an
in-memory vector store and a retrieval chain.

    pip install "llamaport[langchain]"
    LLAMAPORT_URL=http://127.0.0.1:11434 python examples/langchain_rag.py
"""

from __future__ import annotations

import os

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from llamaport.integrations.langchain import ChatLlamaport, LlamaportEmbeddings

BASE_URL = os.environ.get("LLAMAPORT_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LLAMAPORT_MODEL", "smollm2:135m")

FACTS = [
    "Llamas were domesticated in the Andes about 4,500 years ago.",
    "An adult llama weighs between 130 and 200 kilograms.",
    "Alpacas are smaller than llamas and are bred for their fibre.",
    "Llamas communicate by humming.",
]

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer in one sentence, using only this context:\n{context}"),
        ("human", "{question}"),
    ]
)


def main() -> None:
    embeddings = LlamaportEmbeddings(model=MODEL, base_url=BASE_URL)
    store = InMemoryVectorStore.from_documents(
        [Document(page_content=f) for f in FACTS], embeddings
    )
    retriever = store.as_retriever(search_kwargs={"k": 2})

    def context(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    llm = ChatLlamaport(model=MODEL, base_url=BASE_URL, temperature=0, max_tokens=48)
    chain = (
        {"context": retriever | context, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )
    question = "How much does a llama weigh?"
    print("retrieved:", [d.page_content for d in retriever.invoke(question)])
    print("answer:", chain.invoke(question))


if __name__ == "__main__":
    main()
