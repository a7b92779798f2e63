"""The official ``ollama`` Python client (0.6.3) against a real llamaport server.

The client validates every answer with its pydantic models, so calling a
method and reading typed fields proves the response shape; the assertions add
the invariants a program using the client depends on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import ollama
import pytest

from tests.conftest import MODEL, Server

OPTIONS = {"temperature": 0, "seed": 42, "num_predict": 16}
EMBEDDING_LENGTH = 576


@pytest.fixture
def api(server: Server) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_generate(api: ollama.Client) -> None:
    out = api.generate(model=MODEL, prompt="Why is the sky blue?", options=OPTIONS)
    assert isinstance(out, ollama.GenerateResponse)
    assert out.model == MODEL
    assert out.done is True
    assert out.done_reason in ("stop", "length")
    assert isinstance(out.response, str) and out.response
    assert out.eval_count is not None and 0 < out.eval_count <= OPTIONS["num_predict"]
    assert out.prompt_eval_count is not None and out.prompt_eval_count > 0
    assert out.total_duration is not None and out.total_duration > 0
    assert out.context and all(isinstance(t, int) for t in out.context)
    assert out.created_at is not None


def test_generate_stream_matches_non_stream(api: ollama.Client) -> None:
    parts = list(
        api.generate(model=MODEL, prompt="List three colors.", options=OPTIONS, stream=True)
    )
    assert all(isinstance(p, ollama.GenerateResponse) for p in parts)
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    final = parts[-1]
    assert final.done_reason in ("stop", "length")
    assert final.eval_count is not None and final.eval_count <= OPTIONS["num_predict"]
    whole = api.generate(model=MODEL, prompt="List three colors.", options=OPTIONS)
    assert "".join(p.response for p in parts) == whole.response


def test_generate_options_object(api: ollama.Client) -> None:
    options = ollama.Options(temperature=0, num_predict=3)
    out = api.generate(model=MODEL, prompt="Write a long story about a dragon.", options=options)
    assert out.eval_count == 3
    assert out.done_reason == "length"


def test_generate_without_prompt_loads(api: ollama.Client) -> None:
    out = api.generate(model=MODEL)
    assert out.done is True
    assert out.done_reason == "load"
    assert out.response == ""


def test_chat(api: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Hi, who are you?"}]
    out = api.chat(model=MODEL, messages=messages, options=OPTIONS)
    assert isinstance(out, ollama.ChatResponse)
    assert out.model == MODEL
    assert out.done is True
    assert out.done_reason in ("stop", "length")
    assert out.message.role == "assistant"
    assert isinstance(out.message.content, str) and out.message.content
    assert out.eval_count is not None and out.eval_count <= OPTIONS["num_predict"]


def test_chat_stream(api: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Name a fruit."}]
    parts = list(api.chat(model=MODEL, messages=messages, options=OPTIONS, stream=True))
    assert all(isinstance(p, ollama.ChatResponse) for p in parts)
    assert all(p.message.role == "assistant" for p in parts)
    assert all(isinstance(p.message.content, str) for p in parts)
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].prompt_eval_count is not None and parts[-1].eval_count is not None
    whole = api.chat(model=MODEL, messages=messages, options=OPTIONS)
    assert "".join(p.message.content or "" for p in parts) == whole.message.content


def test_chat_multi_turn(api: ollama.Client) -> None:
    messages: list[ollama.Message | dict[str, str]] = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "My name is Ada. Remember it."},
    ]
    prompt_counts = []
    for question in ("What is my name?", "Spell my name backwards."):
        out = api.chat(model=MODEL, messages=messages, options=OPTIONS)
        assert out.message.role == "assistant"
        assert out.prompt_eval_count is not None
        prompt_counts.append(out.prompt_eval_count)
        messages.append(out.message)
        messages.append({"role": "user", "content": question})
    last = api.chat(model=MODEL, messages=messages, options=OPTIONS)
    assert last.prompt_eval_count is not None
    prompt_counts.append(last.prompt_eval_count)
    assert prompt_counts == sorted(set(prompt_counts)), "the history must grow every turn"


def test_embed(api: ollama.Client) -> None:
    single = api.embed(model=MODEL, input="The sky is blue.")
    assert isinstance(single, ollama.EmbedResponse)
    assert single.model == MODEL
    assert len(single.embeddings) == 1
    assert len(single.embeddings[0]) == EMBEDDING_LENGTH
    batch = api.embed(model=MODEL, input=["The sky is blue.", "Grass is green."])
    assert len(batch.embeddings) == 2
    assert all(len(v) == EMBEDDING_LENGTH for v in batch.embeddings)
    assert (
        max(abs(a - b) for a, b in zip(batch.embeddings[0], single.embeddings[0], strict=True))
        < 1e-4
    )
    short = api.embed(model=MODEL, input="The sky is blue.", dimensions=32)
    assert len(short.embeddings[0]) == 32


def test_embeddings_legacy(api: ollama.Client) -> None:
    out = api.embeddings(model=MODEL, prompt="The sky is blue.")
    assert isinstance(out, ollama.EmbeddingsResponse)
    assert len(out.embedding) == EMBEDDING_LENGTH
    assert all(isinstance(x, float) for x in out.embedding)


def test_list(api: ollama.Client) -> None:
    out = api.list()
    assert isinstance(out, ollama.ListResponse)
    (entry,) = [m for m in out.models if m.model == MODEL]
    assert isinstance(entry.modified_at, datetime)
    assert entry.size is not None and entry.size > 0
    assert entry.digest is not None and len(entry.digest) == 64
    assert entry.details is not None
    assert entry.details.format == "gguf"
    assert entry.details.family == "llama"
    assert entry.details.families == ["llama"]
    assert entry.details.parameter_size and entry.details.quantization_level


def test_ps(api: ollama.Client) -> None:
    api.generate(model=MODEL, prompt="Hi", options={"num_predict": 2})
    out = api.ps()
    assert isinstance(out, ollama.ProcessResponse)
    (entry,) = [m for m in out.models if m.model == MODEL]
    assert entry.name == MODEL
    assert isinstance(entry.expires_at, datetime)
    assert entry.expires_at > datetime.now().astimezone()
    assert entry.size is not None and entry.size > 0
    assert entry.size_vram is not None and entry.size_vram >= 0
    assert entry.context_length is not None and entry.context_length > 0
    assert entry.details is not None and entry.details.family == "llama"


def test_unload_with_keep_alive_zero(api: ollama.Client) -> None:
    api.generate(model=MODEL, prompt="Hi", options={"num_predict": 2})
    out = api.generate(model=MODEL, keep_alive=0)
    assert out.done_reason == "unload"
    assert [m.model for m in api.ps().models] == []


def test_show(api: ollama.Client) -> None:
    out = api.show(MODEL)
    assert isinstance(out, ollama.ShowResponse)
    assert out.modelinfo is not None
    assert out.modelinfo["llama.context_length"] == 8192
    assert out.capabilities is not None and "completion" in out.capabilities
    assert out.template and "<|im_start|>" in out.template
    assert isinstance(out.modelfile, str) and out.modelfile.startswith("# Modelfile")
    assert isinstance(out.parameters, str)
    assert out.details is not None and out.details.family == "llama"
    assert isinstance(out.modified_at, datetime)


@pytest.mark.parametrize(
    "call",
    ["generate", "generate-stream", "chat", "chat-stream", "show"],
)
def test_unknown_model_raises_response_error(api: ollama.Client, call: str) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        if call.startswith("generate"):
            result = api.generate(model="nope", prompt="Hi", stream=call.endswith("stream"))
        elif call.startswith("chat"):
            messages = [{"role": "user", "content": "Hi"}]
            result = api.chat(model="nope", messages=messages, stream=call.endswith("stream"))
        else:
            result = api.show("nope")
        if call.endswith("stream"):
            list(result)  # type: ignore[arg-type]
    assert caught.value.status_code == 404
    expected = "model 'nope:latest' not found" if call == "show" else "model 'nope' not found"
    assert caught.value.error == expected


def test_unknown_model_on_embed_raises_response_error(api: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        api.embed(model="nope", input="Hi")
    assert caught.value.status_code == 404
    assert caught.value.error == 'model "nope" not found, try pulling it first'


def test_bad_option_raises_response_error(api: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        api.generate(model=MODEL, prompt="Hi", options={"temperature": "hot"})
    assert caught.value.status_code == 400
    assert caught.value.error == 'option "temperature" must be of type float32'


def test_pull_of_an_invalid_name_raises_a_4xx_response_error(api: ollama.Client) -> None:
    # A 4xx whether /api/pull exists yet (400 invalid model name) or not (404).
    with pytest.raises(ollama.ResponseError) as caught:
        api.pull("../bad")
    assert 400 <= caught.value.status_code < 500


def test_async_client_chat_stream(server: Server) -> None:
    async def main() -> list[ollama.ChatResponse]:
        client = ollama.AsyncClient(host=server.url)
        messages = [{"role": "user", "content": "Name a color."}]
        stream = await client.chat(model=MODEL, messages=messages, options=OPTIONS, stream=True)
        return [part async for part in stream]

    parts = asyncio.run(main())
    assert parts
    assert all(isinstance(p, ollama.ChatResponse) for p in parts)
    assert all(p.message.role == "assistant" for p in parts)
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason in ("stop", "length")
    assert "".join(p.message.content or "" for p in parts)


def test_async_client_generate(server: Server) -> None:
    async def main() -> ollama.GenerateResponse:
        client = ollama.AsyncClient(host=server.url)
        return await client.generate(model=MODEL, prompt="Hi", options=OPTIONS)

    out = asyncio.run(main())
    assert out.done is True
    assert out.response
