"""Stock clients pointed at llamaport: the official ``ollama`` client, langchain-ollama's
``ChatOllama``/``OllamaEmbeddings`` and llama-index's ``Ollama``/``OllamaEmbedding``.

They cannot send ``tool_choice`` (the Ollama API has none), so tool calls
under ``auto`` are checked for shape; ``format`` with a schema is decoded
under a grammar, so its answers must validate.
"""

from __future__ import annotations

import json
import operator
from functools import reduce
from typing import Any

import jsonschema
import ollama
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_ollama import ChatOllama, OllamaEmbeddings
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.ollama import OllamaEmbedding
from llama_index.llms.ollama import Ollama
from pydantic import BaseModel

from tests.conftest import MODEL, Server

SONG = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 30}, "year": {"type": "integer"}},
    "required": ["title", "year"],
    "additionalProperties": False,
}


class Song(BaseModel):
    title: str
    year: int


def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


MAGIC = {
    "type": "function",
    "function": {
        "name": "magic_function",
        "description": "Apply a magic function to an input.",
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "integer"}},
            "required": ["input"],
        },
    },
}
ASK = "What is magic_function(3)? Use the tool."


def _check_calls(calls: list[dict[str, Any]]) -> None:
    for call in calls:
        assert call["name"] == "magic_function"
        assert isinstance(call["args"], dict)


# --- the official ollama client -------------------------------------------------


def test_ollama_client_format_schema_validates(server: Server) -> None:
    response = ollama.Client(host=server.url).chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a song and its year."}],
        format=SONG,
        options={"num_predict": 40, "temperature": 0},
    )
    jsonschema.validate(json.loads(response.message.content or ""), SONG)


def test_ollama_client_streams_tool_history(server: Server) -> None:
    history = [
        {"role": "user", "content": ASK},
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "magic_function", "arguments": {"input": 3}}}],
        },
        {"role": "tool", "content": "5", "tool_name": "magic_function"},
    ]
    parts = list(
        ollama.Client(host=server.url).chat(
            model=MODEL,
            messages=history,
            tools=[MAGIC],
            stream=True,
            options={"num_predict": 12, "temperature": 0},
        )
    )
    assert parts[-1].done and parts[-1].eval_count
    assert all(p.message.role == "assistant" for p in parts)


# --- langchain-ollama -------------------------------------------------------------


@pytest.fixture
def chat_ollama(server: Server) -> ChatOllama:
    return ChatOllama(model=MODEL, base_url=server.url, temperature=0, num_predict=40)


def test_chat_ollama_streams_with_usage_on_the_last_chunk(chat_ollama: ChatOllama) -> None:
    chunks = list(chat_ollama.stream("Hello!"))
    assert len(chunks) > 1
    usage = [c.usage_metadata for c in chunks if c.usage_metadata is not None]
    assert len(usage) == 1 and usage[0]["output_tokens"] > 0


def test_chat_ollama_structured_output_validates(chat_ollama: ChatOllama) -> None:
    song = chat_ollama.with_structured_output(Song).invoke("Name a song and its year.")
    assert isinstance(song, Song)


def test_chat_ollama_structured_output_closes_at_a_small_num_predict(server: Server) -> None:
    """The server closes the document at the limit, so ChatOllama's parser never fails."""
    for seed in (1, 2):
        chat = ChatOllama(
            model=MODEL, base_url=server.url, temperature=1.0, seed=seed, num_predict=16
        )
        assert isinstance(chat.with_structured_output(Song).invoke("Describe a long song."), Song)


def test_chat_ollama_tools_and_tool_history(chat_ollama: ChatOllama) -> None:
    with_tools = chat_ollama.bind_tools([magic_function])
    reply = with_tools.invoke(ASK)
    assert isinstance(reply, AIMessage)
    _check_calls(reply.tool_calls)
    call = {"name": "magic_function", "args": {"input": 3}, "id": "call_1", "type": "tool_call"}
    history = [
        HumanMessage(ASK),
        AIMessage(content="", tool_calls=[call]),
        ToolMessage(content="5", tool_call_id="call_1"),
    ]
    assert isinstance(with_tools.invoke(history), AIMessage)


async def test_chat_ollama_async_stream(chat_ollama: ChatOllama) -> None:
    chunks = [c async for c in chat_ollama.astream("Hello!")]
    whole = reduce(operator.add, chunks)
    assert whole.response_metadata["model_name"] == MODEL and whole.content


def test_ollama_embeddings(server: Server) -> None:
    embeddings = OllamaEmbeddings(model=MODEL, base_url=server.url)
    docs = embeddings.embed_documents(["llamas", "alpacas"])
    assert len(docs) == 2 and len(docs[0]) == len(embeddings.embed_query("camels")) > 0


# --- llama-index's Ollama classes -------------------------------------------------


@pytest.fixture
def li_ollama(server: Server) -> Ollama:
    # context_window given: otherwise llama-index asks for the trained 8192 on every call
    return Ollama(
        model=MODEL,
        base_url=server.url,
        temperature=0,
        context_window=2048,
        request_timeout=120,
        additional_kwargs={"num_predict": 40},
    )


def test_llama_index_ollama_stream_chat(li_ollama: Ollama) -> None:
    responses = list(li_ollama.stream_chat([ChatMessage(role="user", content="Hello!")]))
    assert responses[-1].message.content == "".join(r.delta or "" for r in responses)
    assert responses[-1].raw["usage"]["completion_tokens"] > 0


def test_llama_index_ollama_tools(li_ollama: Ollama) -> None:
    tool = FunctionTool.from_defaults(fn=magic_function)
    response = li_ollama.chat_with_tools([tool], user_msg=ASK)
    for selection in li_ollama.get_tool_calls_from_response(response, error_on_no_tool_call=False):
        assert selection.tool_name == "magic_function"
        assert isinstance(selection.tool_kwargs, dict)


def test_llama_index_ollama_structured_predict(li_ollama: Ollama) -> None:
    song = li_ollama.structured_predict(
        Song, PromptTemplate("Name a song about {topic}."), topic="rain"
    )
    assert isinstance(song, Song)


def test_llama_index_ollama_metadata_reads_the_context_from_show(server: Server) -> None:
    assert Ollama(model=MODEL, base_url=server.url).metadata.context_window == 8192


def test_llama_index_ollama_embedding(server: Server) -> None:
    embed = OllamaEmbedding(model_name=MODEL, base_url=server.url)
    batch = embed.get_text_embedding_batch(["llamas", "alpacas", "camels"])
    query = embed.get_query_embedding("llamas")
    assert len(batch) == 3 and len(query) == len(batch[0])
