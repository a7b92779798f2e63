"""Native routes given bad, sloppy or oversized input: exact statuses and Ollama's
error texts, context limits, and model names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.compat._native import (
    Json,
    assert_alive,
    chat,
    check_stream,
    embed,
    generate,
    media_type,
    ndjson,
    running,
    single_json,
)
from tests.conftest import MODEL, Server

# -- bad input -------------------------------------------------------------------

GO_PROMPT_NUMBER = (
    "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"
)
G = "/api/generate"
C = "/api/chat"
E = "/api/embed"
USER = [{"role": "user", "content": "hi"}]


def _gen(**extra: Any) -> Json:
    return {"model": MODEL, "prompt": "hi", **extra}


BAD_INPUT: list[tuple[str, str, bytes | Json, int, str | None]] = [
    ("empty-body-generate", G, b"", 400, "missing request body"),
    ("empty-body-chat", C, b"", 400, "missing request body"),
    ("empty-body-embed", E, b"", 400, "missing request body"),
    ("whitespace-body", G, b"  \n", 400, "missing request body"),
    ("malformed-json", G, b'{"model": ', 400, None),
    ("malformed-json-chat", C, b"{bad", 400, None),
    ("array-body", G, b"[1, 2]", 400, None),
    ("string-body", C, b'"hello"', 400, None),
    ("generate-empty-object", G, {}, 404, "model '' not found"),
    ("chat-empty-object", C, {}, 400, "model is required"),
    ("embed-empty-object", E, {}, 400, "model is required"),
    ("generate-unknown-model", G, {"model": "nope", "prompt": "hi"}, 404, "model 'nope' not found"),
    (
        "generate-unknown-model-echoed",
        G,
        {"model": "Nope:Tag", "prompt": "hi"},
        404,
        "model 'Nope:Tag' not found",
    ),
    ("chat-unknown-model", C, {"model": "nope", "messages": USER}, 404, "model 'nope' not found"),
    (
        "embed-unknown-model",
        E,
        {"model": "nope", "input": "hi"},
        404,
        'model "nope" not found, try pulling it first',
    ),
    (
        "embeddings-unknown-model",
        "/api/embeddings",
        {"model": "nope", "prompt": "hi"},
        404,
        'model "nope" not found, try pulling it first',
    ),
    ("name-traversal", G, {"model": "../../etc/passwd", "prompt": "hi"}, 400, "invalid model name"),
    ("name-too-many-parts", G, {"model": "a/b/c/d/e", "prompt": "hi"}, 400, "invalid model name"),
    ("name-dotdot-tag", G, {"model": "x:..", "prompt": "hi"}, 400, "invalid model name"),
    ("chat-name-traversal", C, {"model": "../x", "messages": USER}, 400, "invalid model name"),
    ("embed-name-dotdot", E, {"model": "x:..", "input": "hi"}, 400, "invalid model name"),
    ("show-name-traversal", "/api/show", {"model": "../../etc/passwd"}, 400, "invalid model name"),
    ("prompt-number", G, _gen(prompt=1), 400, GO_PROMPT_NUMBER),
    (
        "prompt-array",
        G,
        _gen(prompt=["a"]),
        400,
        "json: cannot unmarshal array into Go struct field GenerateRequest.prompt of type string",
    ),
    (
        "messages-string",
        C,
        {"model": MODEL, "messages": "hi"},
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.messages of type array",
    ),
    (
        "option-wrong-type",
        G,
        _gen(options={"temperature": "hot"}),
        400,
        'option "temperature" must be of type float32',
    ),
    ("keep-alive-no-unit", G, _gen(keep_alive="-1"), 400, 'time: missing unit in duration "-1"'),
    ("keep-alive-bool", G, _gen(keep_alive=True), 400, "Unsupported type: 'bool'"),
    ("top-logprobs-21", G, _gen(top_logprobs=21), 400, "top_logprobs must be between 0 and 20"),
    (
        "chat-top-logprobs-negative",
        C,
        {"model": MODEL, "messages": USER, "top_logprobs": -1},
        400,
        "top_logprobs must be between 0 and 20",
    ),
    (
        "raw-with-system",
        G,
        _gen(raw=True, system="be brief"),
        400,
        "raw mode does not support template, system, or context",
    ),
    (
        "raw-with-context",
        G,
        _gen(raw=True, context=[1, 2]),
        400,
        "raw mode does not support template, system, or context",
    ),
    (
        "format-xml",
        G,
        _gen(format="xml"),
        400,
        'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object',
    ),
    ("embed-input-numbers", E, {"model": MODEL, "input": [1, 2]}, 400, "invalid input type"),
    ("context-negative", G, _gen(context=[1, -182]), 400, "invalid token id -182"),
    ("context-past-vocab", G, _gen(context=[10**12]), 400, f"invalid token id {10**12}"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input(
    client: httpx.Client, path: str, body: bytes | Json, status: int, error: str | None
) -> None:
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert media_type(response) == "application/json"
    payload = response.json()
    assert list(payload) == ["error"]
    assert isinstance(payload["error"], str) and payload["error"]
    if error is not None:
        assert payload["error"] == error
    assert_alive(client)


def test_malformed_json_gets_go_wording(client: httpx.Client) -> None:
    response = client.post(G, content=b"{bad", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid character 'b' looking for beginning of object key string"
    }


@pytest.mark.parametrize("inputs", [[""], ["alpha", ""]], ids=["only-empty", "mixed"])
def test_embed_empty_string_in_a_batch_is_not_a_server_error(
    client: httpx.Client, inputs: list[str]
) -> None:
    response = client.post(E, json={"model": MODEL, "input": inputs})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert len(response.json()["embeddings"]) == len(inputs)
    else:
        assert list(response.json()) == ["error"]


def test_still_generates_after_bad_input(client: httpx.Client) -> None:
    for _, path, body, _, _ in BAD_INPUT[:8]:
        payload = {"content": body} if isinstance(body, bytes) else {"json": body}
        assert client.post(path, **payload).status_code >= 400
    out = single_json(generate(client, "Hi", stream=False, options={"num_predict": 2}))
    assert out["done"] is True
    assert 1 <= out["eval_count"] <= 2


NOT_YET: list[tuple[str, str, Json]] = [
    ("format-json", G, _gen(format="json")),
    ("format-schema", C, {"model": MODEL, "messages": USER, "format": {"type": "object"}}),
    ("tools", C, {"model": MODEL, "messages": USER, "tools": [{"type": "function"}]}),
    ("think", G, _gen(think=True)),
    ("think-level", C, {"model": MODEL, "messages": USER, "think": "high"}),
    ("suffix", G, _gen(suffix="end")),
    ("template", G, _gen(template="{{ .Prompt }}")),
    ("images", G, _gen(images=["aGVsbG8="])),
    (
        "chat-images",
        C,
        {"model": MODEL, "messages": [{"role": "user", "content": "hi", "images": ["aGVsbG8="]}]},
    ),
]


@pytest.mark.parametrize(
    ("path", "body"), [case[1:] for case in NOT_YET], ids=[case[0] for case in NOT_YET]
)
def test_unimplemented_features_answer_cleanly(client: httpx.Client, path: str, body: Json) -> None:
    """Features still being built: a clean 4xx error today, a normal answer once they land.

    What must never happen is a 5xx, a non-JSON body or a half-written stream.
    """
    response = client.post(path, json={**body, "stream": False, "options": {"num_predict": 2}})
    if response.status_code == 200:
        assert single_json(response)["done"] is True
        return
    assert 400 <= response.status_code < 500, response.text
    assert media_type(response) == "application/json"
    payload = response.json()
    assert list(payload) == ["error"] and isinstance(payload["error"], str)
    assert payload["error"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/pull", {"model": "../bad"}),
        ("POST", "/api/push", {"model": "../bad"}),
        ("POST", "/api/create", {"model": "../bad", "from": MODEL}),
        ("POST", "/api/copy", {"source": "nope", "destination": "other"}),
        ("DELETE", "/api/delete", {"model": "nope"}),
        ("POST", "/v1/chat/completions", {"model": "nope", "messages": USER}),
        ("GET", "/v1/models/nope", None),
    ],
    ids=["pull", "push", "create", "copy", "delete", "v1-chat", "v1-model"],
)
def test_routes_in_progress_refuse_bad_requests_with_4xx(
    client: httpx.Client, method: str, path: str, body: Json | None
) -> None:
    """Requests that are wrong whether or not the route exists yet: a 4xx with a body."""
    response = client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.text
    if media_type(response) == "application/json":
        assert "error" in response.json()


ACCEPTED: list[tuple[str, str, Json]] = [
    ("null-options", G, _gen(options={"temperature": None, "top_k": None, "num_predict": 2})),
    ("unknown-option-keys", G, _gen(options={"bogus": 1, "mirostat": 2, "num_predict": 2})),
    ("unknown-fields", G, _gen(unknown={"x": 1}, options={"num_predict": 2})),
    ("format-empty-string", G, _gen(format="", options={"num_predict": 2})),
    ("think-false", G, _gen(think=False, options={"num_predict": 2})),
    ("keep-alive-duration", G, _gen(keep_alive="5m", options={"num_predict": 2})),
    ("keep-alive-seconds", G, _gen(keep_alive=300, options={"num_predict": 2})),
    ("integral-float-option", G, _gen(options={"num_predict": 2.0})),
    ("raw", G, _gen(raw=True, prompt="The capital of France is", options={"num_predict": 2})),
    ("context", G, _gen(context=[1, 2, 3], options={"num_predict": 2})),
    (
        "chat-tools-empty",
        C,
        {"model": MODEL, "messages": USER, "tools": [], "options": {"num_predict": 2}},
    ),
    (
        "chat-role-uppercase",
        C,
        {
            "model": MODEL,
            "messages": [{"role": "USER", "content": "hi"}],
            "options": {"num_predict": 2},
        },
    ),
    ("chat-old-name-field", C, {"name": MODEL, "messages": USER, "options": {"num_predict": 2}}),
]


@pytest.mark.parametrize(
    ("path", "body"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_sloppy_but_valid_requests_are_accepted(
    client: httpx.Client, path: str, body: Json
) -> None:
    response = client.post(path, json={**body, "stream": False})
    out = single_json(response)
    assert out["done"] is True
    assert out["done_reason"] in ("stop", "length")


def test_null_stream_means_stream(client: httpx.Client) -> None:
    response = generate(client, "Hi", stream=None, options={"num_predict": 2})
    check_stream(ndjson(response), MODEL)


# -- context limits ---------------------------------------------------------------


def _history(turns: int) -> list[Json]:
    messages: list[Json] = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"Tell me about topic {i} in some detail."})
        messages.append({"role": "assistant", "content": "Here is a long answer with many words."})
    messages.append({"role": "user", "content": "Summarise."})
    return messages


def test_context_limits(start_server: Callable[..., Server]) -> None:
    small = start_server(LLAMAPORT_CONTEXT_LENGTH="128")
    options = {"temperature": 0, "num_predict": 8}
    with small.client() as c:
        for stream in (True, False):
            response = generate(c, "word " * 300, stream=stream, options=options)
            assert response.status_code == 400, response.text
            assert media_type(response) == "application/json"
            assert "context length" in response.json()["error"]

        messages = _history(6)
        chunks = ndjson(chat(c, messages, options=options))
        final = check_stream(chunks, MODEL)
        assert final["truncated_messages"] > 0
        assert final["prompt_eval_count"] < 128  # the kept history fits the context

        whole = single_json(chat(c, messages, options=options, stream=False))
        assert whole["truncated_messages"] == final["truncated_messages"]

        refused = chat(c, messages, options=options, truncate=False)
        assert refused.status_code == 400
        assert "context length" in refused.json()["error"]

        fits = single_json(chat(c, USER, options=options, stream=False))
        assert "truncated_messages" not in fits or fits["truncated_messages"] == 0


def test_num_ctx_above_the_trained_context_is_clamped(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server(LLAMAPORT_NUM_PARALLEL="1")
    options = {"temperature": 0, "num_predict": 4, "num_ctx": 131072}
    with srv.client() as c:
        whole = generate(c, "Hi", stream=False, options=options)
        single_json(whole)
        assert "clamped" in whole.headers.get("X-Llamaport-Warning", "")
        streamed = generate(c, "Hi", options=options)
        check_stream(ndjson(streamed), MODEL)
        assert "clamped" in streamed.headers.get("X-Llamaport-Warning", "")
        (entry,) = running(c)
        assert entry["context_length"] == 8192
        plain = generate(c, "Hi", stream=False, options={"num_predict": 2})
        assert "X-Llamaport-Warning" not in plain.headers


# -- model names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "SMOLLM2:135M",
        "SmolLM2:135m",
        "registry.ollama.ai/library/smollm2:135m",
        "library/smollm2:135m",
    ],
)
def test_model_names_are_case_insensitive_and_echoed(client: httpx.Client, name: str) -> None:
    options = {"num_predict": 2}
    out = single_json(
        client.post(G, json={"model": name, "prompt": "Hi", "stream": False, "options": options})
    )
    assert out["model"] == name
    chunks = ndjson(client.post(C, json={"model": name, "messages": USER, "options": options}))
    check_stream(chunks, name)
    assert embed(client, "hi", model=name)["model"] == name
    shown = single_json(client.post("/api/show", json={"model": name}))
    assert shown["details"]["family"] == "llama"
