"""``ChatLlamaport`` and ``LlamaportLLM`` beyond the standard suite: what ChatOllama lacks."""

from __future__ import annotations

import httpx
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from llamaport.integrations.langchain import APIError, ChatLlamaport, LlamaportLLM
from tests.compat._thinking import THINKING_MODEL
from tests.conftest import MODEL, Server

ASK = "What is magic_function(3)?"


@tool
def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


@tool
def other_function(text: str) -> str:
    """Echo a text."""
    return text


class Bounded(BaseModel):
    n: int = Field(ge=1, le=5)


@pytest.fixture
def chat(server: Server) -> ChatLlamaport:
    return ChatLlamaport(model=MODEL, base_url=server.url, temperature=0, max_tokens=32)


def test_a_named_tool_choice_is_the_call_that_comes(chat: ChatLlamaport) -> None:
    reply = chat.bind_tools([magic_function, other_function], tool_choice="other_function").invoke(
        ASK
    )
    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert call["name"] == "other_function" and isinstance(call["args"]["text"], str)


def test_tool_choice_none_never_calls(chat: ChatLlamaport) -> None:
    reply = chat.bind_tools([magic_function], tool_choice="none").invoke(ASK)
    assert isinstance(reply, AIMessage) and reply.tool_calls == []


def test_an_unknown_tool_name_is_refused_at_bind_time(chat: ChatLlamaport) -> None:
    with pytest.raises(ValueError, match="not one of the bound tools"):
        chat.bind_tools([magic_function], tool_choice="nope")


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_honours_integer_bounds(chat: ChatLlamaport, method: str) -> None:
    out = chat.with_structured_output(Bounded, method=method).invoke("Pick a number.")  # type: ignore[arg-type]
    assert isinstance(out, Bounded) and 1 <= out.n <= 5


def test_per_call_options_reach_the_server(chat: ChatLlamaport) -> None:
    reply = chat.invoke("Count to fifty.", max_tokens=3)
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] <= 3
    assert reply.response_metadata["done_reason"] == "length"


def test_a_per_call_model_is_the_one_asked(chat: ChatLlamaport) -> None:
    with pytest.raises(APIError, match="not found") as caught:
        chat.invoke("Hi", model="nosuch:model")
    assert caught.value.status_code == 404


def test_think_is_sent_as_native_think(server: Server) -> None:
    """SmolLM2 cannot think, so the server's refusal proves ``think`` arrived."""
    with pytest.raises(APIError, match="does not support thinking"):
        ChatLlamaport(model=MODEL, base_url=server.url, think=True, max_tokens=4).invoke("Hi")


def test_a_thinking_model_reasons_apart_from_its_answer(thinking_server: Server) -> None:
    chat = ChatLlamaport(
        model=THINKING_MODEL, base_url=thinking_server.url, temperature=0, max_tokens=48
    )
    reply = chat.invoke("Why is the sky blue?")
    thinking = reply.additional_kwargs.get("reasoning_content")
    assert isinstance(thinking, str) and thinking.strip()
    assert "<think>" not in str(reply.content) and "</think>" not in str(reply.content)


def test_a_conversation_keeps_the_turns_on_the_server(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as api:
        conversation = api.post("/v1/conversations", json={}).json()["id"]
        chat = ChatLlamaport(
            model=MODEL, base_url=server.url, max_tokens=4, conversation=conversation
        )
        chat.invoke("Hi, I am Ana.")
        chat.invoke("What is my name?")
        items = api.get(f"/v1/conversations/{conversation}/items", params={"order": "asc"})
    roles = [item["role"] for item in items.json()["data"]]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_profile_is_filled_from_show(chat: ChatLlamaport) -> None:
    assert chat.profile is not None
    assert chat.profile["max_input_tokens"] == 8192
    assert chat.profile["tool_choice"] and chat.profile["structured_output"]


async def test_the_llm_completes_streams_and_batches(server: Server) -> None:
    llm = LlamaportLLM(model=MODEL, base_url=server.url, temperature=0, max_tokens=8)
    assert isinstance(llm.invoke("Llamas are"), str)
    chunks = list(llm.stream("Llamas are"))
    assert len(chunks) > 1
    result = await llm.agenerate(["Llamas are", "Alpacas are"])
    assert [len(g) for g in result.generations] == [1, 1]
    info = result.generations[0][0].generation_info or {}
    assert info["done"] is True and info["eval_count"] <= 8


class Pet(BaseModel):
    name: str = Field(min_length=2)
    legs: int = Field(ge=2, le=8)
    toys: list[str] = Field(min_length=1)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("max_tokens", [30, 45])
def test_structured_output_closes_at_a_small_max_tokens(
    server: Server, method: str, max_tokens: int
) -> None:
    """The server closes the document at the limit, so parsing never fails."""
    chat = ChatLlamaport(model=MODEL, base_url=server.url, temperature=0.9, max_tokens=max_tokens)
    out = chat.with_structured_output(Pet, method=method).invoke("Describe a pet at length.")  # type: ignore[arg-type]
    assert isinstance(out, Pet)
