"""``Llamaport`` and ``LlamaportEmbedding`` against the live server.

``tool_required`` is enforced by the server's grammar and ``structured_predict``
sends the schema as ``format``, so those answers are checked for content;
everything else is checked for shape (the model is tiny).
"""

from __future__ import annotations

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llamaport.integrations.llama_index import Llamaport, LlamaportEmbedding
from tests.conftest import MODEL, Server

HI = [ChatMessage(role="user", content="Hello!")]


class Song(BaseModel):
    title: str
    year: int


def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


@pytest.fixture
def llm(server: Server) -> Llamaport:
    return Llamaport(model=MODEL, base_url=server.url, temperature=0, max_tokens=24)


def test_metadata_comes_from_show(llm: Llamaport) -> None:
    meta = llm.metadata
    assert meta.context_window == 8192
    assert meta.is_function_calling_model and meta.is_chat_model
    assert meta.num_output == 24 and meta.model_name == MODEL


def test_chat_and_complete_report_usage(llm: Llamaport) -> None:
    chat = llm.chat(HI)
    assert chat.message.role == "assistant" and chat.message.content
    assert chat.raw["usage"]["completion_tokens"] <= 24
    completion = llm.complete("Llamas are")
    assert completion.text and completion.raw["done"] is True


def test_streams_accumulate_their_deltas(llm: Llamaport) -> None:
    chats = list(llm.stream_chat(HI))
    assert chats[-1].message.content == "".join(c.delta or "" for c in chats)
    completions = list(llm.stream_complete("Llamas are"))
    assert completions[-1].text == "".join(c.delta or "" for c in completions)


async def test_async_variants(llm: Llamaport) -> None:
    assert (await llm.achat(HI)).message.content
    assert (await llm.acomplete("Llamas are")).text
    chats = [c async for c in await llm.astream_chat(HI)]
    assert chats[-1].raw["done"] is True
    completions = [c async for c in await llm.astream_complete("Llamas are")]
    assert completions[-1].text == "".join(c.delta or "" for c in completions)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_tool_required_forces_a_valid_call(llm: Llamaport, stream: bool) -> None:
    tool = FunctionTool.from_defaults(fn=magic_function)
    ask = "What is magic_function(3)?"
    if stream:
        responses = [
            r async for r in await llm.astream_chat_with_tools([tool], ask, tool_required=True)
        ]
        response = responses[-1]
    else:
        response = llm.chat_with_tools([tool], user_msg=ask, tool_required=True)
    [selection] = llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "magic_function"
    assert isinstance(selection.tool_kwargs["input"], int)
    assert selection.tool_id.startswith("call_")


def test_predict_and_call_runs_the_tool(llm: Llamaport) -> None:
    tool = FunctionTool.from_defaults(fn=magic_function)
    out = llm.predict_and_call([tool], user_msg="What is magic_function(3)?", tool_required=True)
    assert out.sources and out.sources[0].tool_name == "magic_function"
    assert out.response == str(out.sources[0].raw_input["kwargs"]["input"] + 2)


async def test_structured_predict_validates(server: Server) -> None:
    llm = Llamaport(model=MODEL, base_url=server.url, temperature=0, max_tokens=48)
    prompt = PromptTemplate("Name a song about {topic}.")
    assert isinstance(llm.structured_predict(Song, prompt, topic="rain"), Song)
    assert isinstance(await llm.astructured_predict(Song, prompt, topic="sun"), Song)


async def test_embeddings_are_batched(server: Server) -> None:
    embed = LlamaportEmbedding(model_name=MODEL, base_url=server.url, embed_batch_size=2)
    batch = embed.get_text_embedding_batch(["llamas", "alpacas", "camels"])
    assert len(batch) == 3 and len({len(v) for v in batch}) == 1
    query = await embed.aget_query_embedding("llamas")
    assert len(query) == len(batch[0])
    together = await embed.aget_text_embedding_batch(["llamas", "alpacas", "camels"])
    assert [v[:8] for v in together] == [pytest.approx(v[:8], abs=1e-3) for v in batch]
