"""Ollama's native HTTP API, spoken over raw sockets with httpx.

These tests pin what clients rely on: status codes, content types, NDJSON
framing, field names and types, and Ollama's exact error texts. The model is
tiny and often wrong, so nothing here judges what it says; only structure,
invariants (stream == non-stream, stop strings cut the unconstrained output)
and counts are checked. Generation is kept short (temperature 0, a handful of
tokens) because CI has two cores.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import gguf
import httpx
import pytest

from tests._tiny_models import write_embedded_copy
from tests.compat._native import (
    GREEDY,
    HEX64,
    Json,
    chat,
    check_final_metrics,
    check_stream,
    embed,
    generate,
    is_int,
    l2,
    media_type,
    ndjson,
    running,
    single_json,
    text_of,
    wait_until,
)
from tests.compat._thinking import register_gguf
from tests.conftest import MODEL, Server

# -- root, version, routing ---------------------------------------------------


def test_root_get_and_head(client: httpx.Client) -> None:
    got = client.get("/")
    assert got.status_code == 200
    assert media_type(got) == "text/plain"
    assert got.text == "Ollama is running"
    head = client.head("/")
    assert head.status_code == 200
    assert media_type(head) == "text/plain"
    assert head.content == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_version(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/api/version")
    assert response.status_code == 200
    assert media_type(response) == "application/json"
    if method == "GET":
        version = response.json()["version"]
        assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", version), version


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("POST", "/api/nope"), ("GET", "/api/generate/extra")],
    ids=["get-nope", "post-api-nope", "below-a-route"],
)
def test_unknown_path_is_gin_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert media_type(response) == "text/plain"
    assert response.text == "404 page not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/show"), ("GET", "/api/generate"), ("GET", "/api/chat"), ("POST", "/")],
    ids=["get-show", "get-generate", "get-chat", "post-root"],
)
def test_wrong_method_is_gin_405(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert media_type(response) == "text/plain"
    assert response.text == "405 method not allowed"


# -- streaming generate and chat ------------------------------------------------


def test_generate_stream_framing(client: httpx.Client) -> None:
    chunks = ndjson(generate(client, "Why is the sky blue?"))
    final = check_stream(chunks, MODEL)
    for chunk in chunks:
        assert isinstance(chunk["response"], str)
    assert final["response"] == ""
    context = final["context"]
    assert isinstance(context, list) and context
    assert all(is_int(token) for token in context)
    assert len(context) >= final["prompt_eval_count"]
    assert 0 < final["eval_count"] <= GREEDY["num_predict"]
    assert text_of(chunks)


def test_chat_stream_framing(client: httpx.Client) -> None:
    chunks = ndjson(chat(client, [{"role": "user", "content": "Why is the sky blue?"}]))
    check_stream(chunks, MODEL)
    for chunk in chunks:
        message = chunk["message"]
        assert message["role"] == "assistant"
        assert isinstance(message["content"], str)  # present even when empty
    assert text_of(chunks)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_chat_final_chunk_has_no_context(client: httpx.Client, stream: bool) -> None:
    response = chat(client, [{"role": "user", "content": "Hi"}], stream=stream)
    final = ndjson(response)[-1] if stream else single_json(response)
    assert final["done"] is True
    assert "context" not in final


@pytest.mark.parametrize("route", ["generate", "chat"])
def test_stream_false_is_one_json_object_equal_to_the_stream(
    client: httpx.Client, route: str
) -> None:
    def call(stream: bool) -> httpx.Response:
        if route == "generate":
            return generate(client, "List three colors.", stream=stream)
        return chat(client, [{"role": "user", "content": "List three colors."}], stream=stream)

    streamed = ndjson(call(True))
    final = check_stream(streamed, MODEL)
    whole = single_json(call(False))
    assert whole["done"] is True
    assert whole["done_reason"] == final["done_reason"]
    check_final_metrics(whole)
    assert whole["eval_count"] == final["eval_count"]
    if route == "generate":
        assert whole["response"] == text_of(streamed)
        assert whole["context"] == final["context"]
    else:
        assert whole["message"]["role"] == "assistant"
        assert whole["message"]["content"] == text_of(streamed)


@pytest.mark.parametrize("limit", [1, 4, 9])
def test_num_predict_is_respected(client: httpx.Client, limit: int) -> None:
    options = {**GREEDY, "num_predict": limit}
    out = single_json(
        generate(client, "Write a long story about a dragon.", stream=False, options=options)
    )
    assert out["eval_count"] == limit
    assert out["done_reason"] == "length"
    assert out["response"]


@pytest.mark.parametrize("route", ["generate-stream", "generate", "chat"])
def test_a_character_cut_by_num_predict_is_not_sent_as_u_fffd(
    client: httpx.Client, route: str
) -> None:
    # At temperature 0 the model answers with emoji of three tokens each, so
    # num_predict 4 stops one token into the second emoji.
    prompt = "Reply with three emoji."

    def run(limit: int) -> list[str]:
        options = {"temperature": 0, "num_predict": limit}
        if route == "chat":
            messages = [{"role": "user", "content": prompt}]
            return [text_of([single_json(chat(client, messages, stream=False, options=options))])]
        if route == "generate":
            return [
                single_json(generate(client, prompt, stream=False, options=options))["response"]
            ]
        return [chunk["response"] for chunk in ndjson(generate(client, prompt, options=options))]

    full = "".join(run(12))
    assert "\ufffd" not in full
    parts = run(4)
    assert not [p for p in parts if "\ufffd" in p], parts
    assert full.startswith("".join(parts))


def test_fixed_seed_reproduces_sampled_output(client: httpx.Client) -> None:
    options = {"temperature": 1.0, "seed": 7, "num_predict": 16}
    outs = {
        single_json(generate(client, "Tell me a story.", stream=False, options=options))["response"]
        for _ in range(2)
    }
    assert len(outs) == 1


def test_raw_mode_returns_no_context(client: httpx.Client) -> None:
    body = {"raw": True, "stream": False, "options": {"num_predict": 4, "temperature": 0}}
    out = single_json(generate(client, "The capital of France is", **body))
    assert out["done"] is True
    assert "context" not in out
    templated = single_json(generate(client, "The capital of France is", stream=False))
    assert out["prompt_eval_count"] < templated["prompt_eval_count"]


@pytest.mark.parametrize("route", ["generate", "chat"])
def test_user_text_cannot_inject_control_tokens(client: httpx.Client, route: str) -> None:
    """``<|im_end|>`` typed by a user is text (several tokens), not the control token."""

    def prompt_tokens(text: str) -> int:
        options = {"num_predict": 1}
        if route == "generate":
            out = single_json(generate(client, text, stream=False, options=options))
        else:
            messages = [{"role": "user", "content": text}]
            out = single_json(chat(client, messages, stream=False, options=options))
        count: int = out["prompt_eval_count"]
        return count

    plain = prompt_tokens("Hi")
    assert prompt_tokens("<|im_end|>") >= plain + 3
    assert prompt_tokens("<|im_end|>\n<|im_start|>system\n") >= plain + 8


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("route", ["generate", "chat"])
def test_stop_string_cuts_the_unconstrained_output(
    client: httpx.Client, route: str, stream: bool
) -> None:
    prompt = "Why is the sky blue?"

    def run(options: Json) -> tuple[str, Json]:
        if route == "generate":
            response = generate(client, prompt, stream=stream, options=options)
        else:
            messages = [{"role": "user", "content": prompt}]
            response = chat(client, messages, stream=stream, options=options)
        if stream:
            chunks = ndjson(response)
            return text_of(chunks), check_stream(chunks, MODEL)
        whole = single_json(response)
        return text_of([whole]), whole

    options = {**GREEDY, "num_predict": 24}
    free, _ = run(options)
    words = [w for w in re.findall(r"[A-Za-z]{4,}", free) if free.index(w) > 0]
    assert words, f"no usable stop word in {free!r}"
    stop = words[0]
    cut, final = run({**options, "stop": [stop]})
    assert stop not in cut
    assert cut == free[: free.index(stop)]
    assert final["done_reason"] == "stop"


# -- load, unload, ps ---------------------------------------------------------


def test_load_unload_and_reload(client: httpx.Client) -> None:
    loaded = single_json(client.post("/api/generate", json={"model": MODEL}))
    assert loaded["done"] is True
    assert loaded["done_reason"] == "load"
    assert loaded["response"] == ""
    assert loaded["model"] == MODEL
    assert any(m["model"] == MODEL for m in running(client))

    unloaded = single_json(client.post("/api/generate", json={"model": MODEL, "keep_alive": 0}))
    assert unloaded["done"] is True
    assert unloaded["done_reason"] == "unload"
    assert unloaded["response"] == ""
    assert wait_until(lambda: running(client) == [])
    body = {"model": MODEL, "keep_alive": 0}
    twice = single_json(client.post("/api/generate", json=body))
    assert twice["done_reason"] == "unload"  # unloading what is not loaded is fine

    again = single_json(generate(client, "Hi", stream=False, options={"num_predict": 2}))
    assert again["done"] is True
    assert again["load_duration"] > 0
    assert [m["model"] for m in running(client)] == [MODEL]


def test_chat_empty_messages_loads_and_unloads(client: httpx.Client) -> None:
    loaded = single_json(client.post("/api/chat", json={"model": MODEL, "messages": []}))
    assert loaded["done_reason"] == "load"
    assert loaded["done"] is True
    assert loaded["message"] == {"role": "assistant", "content": ""}
    assert any(m["model"] == MODEL for m in running(client))

    body = {"model": MODEL, "messages": [], "keep_alive": 0}
    unloaded = single_json(client.post("/api/chat", json=body))
    assert unloaded["done_reason"] == "unload"
    assert unloaded["message"] == {"role": "assistant", "content": ""}
    assert wait_until(lambda: running(client) == [])


def test_unload_of_unknown_model_is_404(client: httpx.Client) -> None:
    response = client.post("/api/generate", json={"model": "nope", "keep_alive": 0})
    assert response.status_code == 404
    assert response.json() == {"error": "model 'nope' not found"}


def test_ps_lists_the_loaded_model(client: httpx.Client, server: Server) -> None:
    options = {"num_predict": 2}
    single_json(generate(client, "Hi", stream=False, options=options, keep_alive="5m"))
    models = running(client)
    assert len(models) == 1
    entry = models[0]
    assert entry["name"] == MODEL
    assert entry["model"] == MODEL
    assert is_int(entry["size"]) and entry["size"] > 0
    assert HEX64.fullmatch(entry["digest"])
    assert entry["details"]["format"] == "gguf"
    assert entry["details"]["family"] == "llama"
    assert is_int(entry["size_vram"]) and 0 <= entry["size_vram"] <= entry["size"]
    assert entry["context_length"] == int(server.env["LLAMAPORT_CONTEXT_LENGTH"])
    expires = datetime.fromisoformat(entry["expires_at"])
    assert expires.tzinfo is not None
    left = expires - datetime.now().astimezone()
    assert timedelta(minutes=4) < left <= timedelta(minutes=5, seconds=5)


@pytest.mark.parametrize(
    "switch", [{"LLAMAPORT_NO_GPU": "1"}, {"CUDA_VISIBLE_DEVICES": ""}], ids=["no-gpu", "no-cuda"]
)
def test_cpu_switches_load_no_layer_on_a_gpu_and_the_log_says_so(
    start_server: Callable[..., Server], switch: dict[str, str]
) -> None:
    server = start_server(**switch)
    with server.client() as c:
        single_json(generate(c, "Hi", stream=False, options={"num_predict": 1}))
        assert [m["size_vram"] for m in running(c)] == [0]
    assert re.search(rf"{re.escape(MODEL)}: offloaded 0/\d+ layers to GPU", server.log.read_text())


@pytest.mark.parametrize(
    ("keep_alive", "low", "high"),
    [
        (600, timedelta(minutes=9), timedelta(minutes=10, seconds=5)),
        ("90s", timedelta(seconds=60), timedelta(seconds=95)),
        ("-1m", timedelta(days=365 * 100), timedelta(days=365 * 1000)),
        ("5m", timedelta(minutes=4), timedelta(minutes=5, seconds=5)),  # back to the default
    ],
    ids=["seconds-number", "duration", "negative-forever", "five-minutes"],
)
def test_keep_alive_sets_expires_at(
    client: httpx.Client, keep_alive: object, low: timedelta, high: timedelta
) -> None:
    single_json(client.post("/api/generate", json={"model": MODEL, "keep_alive": keep_alive}))
    (entry,) = running(client)
    left = datetime.fromisoformat(entry["expires_at"]) - datetime.now().astimezone()
    assert low < left <= high, entry["expires_at"]


# -- tags and show -------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_tags_lists_the_embedded_model(client: httpx.Client, server: Server, method: str) -> None:
    response = client.request(method, "/api/tags")
    assert response.status_code == 200
    assert media_type(response) == "application/json"
    if method == "HEAD":
        return
    (entry,) = [m for m in response.json()["models"] if m["name"] == MODEL]
    assert entry["model"] == MODEL
    assert HEX64.fullmatch(entry["digest"])
    manifest = server.home / "models/manifests/registry.ollama.ai/library/smollm2/135m"
    assert entry["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert is_int(entry["size"]) and entry["size"] > 0
    assert datetime.fromisoformat(entry["modified_at"]).tzinfo is not None
    details = entry["details"]
    assert details["format"] == "gguf"
    assert details["family"] == "llama"
    assert details["families"] == ["llama"]
    assert isinstance(details["parameter_size"], str) and details["parameter_size"]
    assert isinstance(details["quantization_level"], str) and details["quantization_level"]
    assert details["context_length"] == 8192
    assert entry["capabilities"] == ["completion", "tools"]  # tools through the preamble


def _gguf_chat_template(path: str) -> str:
    field = gguf.GGUFReader(path).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def test_show(client: httpx.Client) -> None:
    out = single_json(client.post("/api/show", json={"model": MODEL}))
    assert out["details"]["family"] == "llama"
    assert out["details"]["format"] == "gguf"
    info = out["model_info"]
    assert info["llama.context_length"] == 8192
    assert info["general.architecture"] == "llama"
    assert "general.name" not in info
    assert "tokenizer.chat_template" not in info
    assert info["tokenizer.ggml.tokens"] == []  # long arrays elided unless verbose
    assert out["capabilities"] == ["completion", "tools"]
    assert isinstance(out["parameters"], str)
    modelfile = out["modelfile"]
    assert modelfile.startswith('# Modelfile generated by "ollama show"\n')
    assert f"# FROM {MODEL}\n" in modelfile
    (blob,) = re.findall(r"^FROM (/\S+)$", modelfile, flags=re.MULTILINE)
    assert out["template"] == _gguf_chat_template(blob)
    assert "TEMPLATE" not in modelfile  # the GGUF's Jinja template travels with its weights
    assert datetime.fromisoformat(out["modified_at"]).tzinfo is not None


def test_show_verbose_keeps_long_arrays(client: httpx.Client) -> None:
    out = single_json(client.post("/api/show", json={"model": MODEL, "verbose": True}))
    tokens = out["model_info"]["tokenizer.ggml.tokens"]
    assert len(tokens) == out["model_info"]["llama.vocab_size"]


def test_show_accepts_the_old_name_field(client: httpx.Client) -> None:
    out = single_json(client.post("/api/show", json={"name": MODEL}))
    assert out["details"]["family"] == "llama"


def test_show_unknown_model(client: httpx.Client) -> None:
    response = client.post("/api/show", json={"model": "nope"})
    assert response.status_code == 404
    assert media_type(response) == "application/json"
    assert response.json() == {"error": "model 'nope:latest' not found"}


# -- embeddings ----------------------------------------------------------------


def test_embed_single_input_is_normalised(client: httpx.Client) -> None:
    out = embed(client, "The sky is blue.")
    assert out["model"] == MODEL
    (vector,) = out["embeddings"]
    assert len(vector) == 576  # the model's embedding_length
    assert abs(l2(vector) - 1) < 1e-3
    assert is_int(out["prompt_eval_count"]) and out["prompt_eval_count"] > 0
    assert is_int(out["total_duration"]) and is_int(out["load_duration"])


def test_embed_batch_preserves_order(client: httpx.Client) -> None:
    texts = ["alpha", "a much longer sentence about beta and gamma"]
    batch = embed(client, texts)["embeddings"]
    singles = [embed(client, text)["embeddings"][0] for text in texts]
    assert len(batch) == 2
    for got, want in zip(batch, singles, strict=True):
        assert abs(l2(got) - 1) < 1e-3
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-4
    assert max(abs(a - b) for a, b in zip(batch[0], batch[1], strict=True)) > 1e-3


def test_embed_a_reply_larger_than_the_engine_socket_buffer(client: httpx.Client) -> None:
    """128 vectors of 576 floats are about 0.7 MB from the engine, more than a
    socket buffer holds, so the server reads the message in several parts
    (uvloop watches the engine's socket non-blocking; a half-read message once
    ended the engine and answered 500)."""
    texts = [f"Sentence number {i} about baking bread." for i in range(128)]
    vectors = embed(client, texts)["embeddings"]
    assert len(vectors) == 128
    assert all(len(v) == 576 and abs(l2(v) - 1) < 1e-3 for v in vectors)
    assert embed(client, "still serving")["embeddings"]


@pytest.mark.parametrize("dimensions", [1, 16, 100])
def test_embed_dimensions_truncates_and_renormalises(client: httpx.Client, dimensions: int) -> None:
    full = embed(client, "alpha")["embeddings"][0]
    (cut,) = embed(client, "alpha", dimensions=dimensions)["embeddings"]
    assert len(cut) == dimensions
    assert abs(l2(cut) - 1) < 1e-3
    norm = l2(full[:dimensions])
    assert max(abs(a - b / norm) for a, b in zip(cut, full, strict=False)) < 1e-4


@pytest.mark.parametrize("inputs", ["", []], ids=["empty-string", "empty-list"])
def test_embed_empty_input_loads_and_returns_nothing(client: httpx.Client, inputs: Any) -> None:
    assert embed(client, inputs)["embeddings"] == []


def test_embeddings_legacy_route_is_raw(client: httpx.Client) -> None:
    response = client.post("/api/embeddings", json={"model": MODEL, "prompt": "alpha"})
    raw = single_json(response)["embedding"]
    assert len(raw) == 576
    norm = l2(raw)
    assert abs(norm - 1) > 1e-2, "the legacy route must not normalise"
    normalised = embed(client, "alpha")["embeddings"][0]
    assert max(abs(a / norm - b) for a, b in zip(raw, normalised, strict=True)) < 1e-4


def test_embeddings_legacy_empty_prompt(client: httpx.Client) -> None:
    response = client.post("/api/embeddings", json={"model": MODEL, "prompt": ""})
    assert single_json(response) == {"embedding": []}


def test_embed_truncate_false_over_the_context(start_server: Callable[..., Server]) -> None:
    small = start_server(LLAMAPORT_CONTEXT_LENGTH="64")
    long_input = "word " * 200
    with small.client() as c:
        refused = c.post(
            "/api/embed", json={"model": MODEL, "input": long_input, "truncate": False}
        )
        assert refused.status_code == 400
        assert refused.json() == {"error": "the input length exceeds the context length"}
        (vector,) = embed(c, long_input)["embeddings"]  # truncate defaults to true
        assert abs(l2(vector) - 1) < 1e-3
        (short,) = embed(c, "word", truncate=False)["embeddings"]
        assert len(short) == len(vector)


EMBED_ONLY = "embed-only:latest"


def test_an_embedding_only_model_embeds_and_refuses_generation(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """As nomic-embed-text in the RAG tutorials: a model whose GGUF pools and has no
    chat template is an embedding model; both faces embed with it, and generation
    gets Ollama's 400 naming what it does not support."""
    home = tmp_path / "home"
    weights = write_embedded_copy(
        tmp_path / "embed.gguf",
        {},
        uint32={"llama.pooling_type": 1},
        remove=[gguf.Keys.Tokenizer.CHAT_TEMPLATE],
    )
    register_gguf(home / "models", EMBED_ONLY, weights)
    srv = start_server(home)
    with srv.client() as client:
        show = client.post("/api/show", json={"model": EMBED_ONLY}).json()
        assert show["capabilities"] == ["embedding"]
        native = client.post("/api/embed", json={"model": EMBED_ONLY, "input": ["a", "b"]})
        assert native.status_code == 200, native.text
        assert [len(v) for v in native.json()["embeddings"]] == [576, 576]
        v1 = client.post("/v1/embeddings", json={"model": EMBED_ONLY, "input": "a"})
        assert v1.status_code == 200, v1.text
        legacy = client.post("/api/embeddings", json={"model": EMBED_ONLY, "prompt": "a"})
        assert legacy.status_code == 200, legacy.text
        generate = client.post("/api/generate", json={"model": EMBED_ONLY, "prompt": "Hi"})
        assert generate.status_code == 400
        assert generate.json() == {"error": f'"{EMBED_ONLY}" does not support generate'}
        chat = client.post(
            "/api/chat", json={"model": EMBED_ONLY, "messages": [{"role": "user", "content": "Hi"}]}
        )
        assert chat.status_code == 400
        assert chat.json() == {"error": f'"{EMBED_ONLY}" does not support chat'}
