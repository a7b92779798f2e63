"""``/v1`` errors: status plus OpenAI's envelope, 400 (never 422) for bad requests.

None of these reaches generation: each is refused while decoding, lowering,
or by the runtime's checks before a model loads.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from llamaport.compat.errors import ApiError, openai_error_body, openai_error_response
from llamaport.runtime.errors import BadRequest, EngineError, ServerBusy
from llamaport.storage.errors import ModelNotFound
from tests.conftest import MODEL

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
USER: list[Any] = [{"role": "user", "content": "hi"}]
PNG = "data:image/png;base64,iVBORw0KGgo="


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": USER, "max_tokens": 4, **fields}


def _history(arguments: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return _chat(messages=[*USER, {"role": "assistant", "content": None, "tool_calls": [call]}])


CASES: list[tuple[str, str, Any, str, str | None]] = [
    ("not-json", CHAT, b"{not json", "could not parse the JSON body", None),
    ("empty-body", CHAT, b"", "could not parse the JSON body", None),
    ("array-body", CHAT, b"[]", "must be a JSON object", None),
    ("missing-model", CHAT, {"messages": USER}, "Missing required parameter: 'model'", "model"),
    ("missing-messages", CHAT, {"model": MODEL}, "[] is too short - 'messages'", "messages"),
    ("empty-messages", CHAT, _chat(messages=[]), "[] is too short - 'messages'", "messages"),
    (
        "unknown-part",
        CHAT,
        _chat(messages=[{"role": "user", "content": [{"type": "video", "video": "x"}]}]),
        "Invalid value: 'video'",
        "messages[0].content[0].type",
    ),
    (
        "content-number",
        CHAT,
        _chat(messages=[{"role": "user", "content": 5}]),
        "expected a string or an array of content parts, but got an integer",
        "messages[0].content",
    ),
    (
        "image-data-uri",
        CHAT,
        _chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": PNG}]}]),
        f'"{MODEL}" does not support images',
        None,
    ),
    (
        "image-http-url",
        CHAT,
        _chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                }
            ]
        ),
        f'"{MODEL}" does not support images',
        None,
    ),
    (
        "image-bad-url",
        CHAT,
        _chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]),
        "invalid image input",
        "messages[0].content[0].image_url",
    ),
    (
        "unknown-role",
        CHAT,
        _chat(messages=[{"role": "wizard", "content": "hi"}]),
        "Invalid value: 'wizard'",
        "messages[0].role",
    ),
    (
        "bad-tool-arguments",
        CHAT,
        _history("{not json"),
        "invalid tool call arguments",
        "messages[1].tool_calls[0].function.arguments",
    ),
    ("array-tool-arguments", CHAT, _history("[1]"), "invalid tool call arguments", None),
    ("stop-number", CHAT, _chat(stop=["a", 5]), "Invalid type for 'stop[1]'", "stop[1]"),
    ("top-logprobs-21", CHAT, _chat(top_logprobs=21), "'top_logprobs'", "top_logprobs"),
    (
        "top-logprobs-alone",
        CHAT,
        _chat(top_logprobs=2),
        "'logprobs' must be true",
        "top_logprobs",
    ),
    ("n-zero", CHAT, _chat(n=0), "Invalid 'n'", "n"),
    ("max-tokens-zero", CHAT, _chat(max_tokens=0), "Invalid 'max_tokens'", "max_tokens"),
    ("stream-string", CHAT, _chat(stream="yes"), "Invalid type for 'stream'", "stream"),
    (
        "schema-missing",
        CHAT,
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        "Missing required parameter: 'response_format.json_schema.schema'",
        "response_format.json_schema.schema",
    ),
    (
        "format-type",
        CHAT,
        _chat(response_format={"type": "xml"}),
        "Invalid value: 'xml'",
        "response_format.type",
    ),
    (
        "reasoning-unknown",
        CHAT,
        _chat(reasoning_effort="turbo"),
        'invalid reasoning value: "turbo"',
        "reasoning_effort",
    ),
    (
        "reasoning-unsupported",
        CHAT,
        _chat(reasoning_effort="high"),
        "does not support thinking",
        None,
    ),
    ("tool-choice", CHAT, _chat(tool_choice="sometimes"), "'tool_choice'", "tool_choice"),
    (
        "options-type",
        CHAT,
        _chat(options={"num_ctx": "big"}),
        'option "num_ctx" must be of type integer',
        None,
    ),
    ("keep-alive-bool", CHAT, _chat(keep_alive=True), "Unsupported type: 'bool'", None),
    (
        "echo",
        COMPLETIONS,
        {"model": MODEL, "prompt": "x", "echo": True},
        "echo is not supported",
        "echo",
    ),
    (
        "completion-logprobs-21",
        COMPLETIONS,
        {"model": MODEL, "prompt": "x", "logprobs": 21},
        "Invalid 'logprobs': expected a value between 0 and 20",
        "logprobs",
    ),
    ("two-prompts", COMPLETIONS, {"model": MODEL, "prompt": ["a", "b"]}, "one prompt", "prompt"),
    ("token-prompt", COMPLETIONS, {"model": MODEL, "prompt": [1, 2]}, "one prompt", "prompt"),
    (
        "encoding-format",
        EMBEDDINGS,
        {"model": MODEL, "input": "x", "encoding_format": "int8"},
        "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        "encoding_format",
    ),
    ("input-empty", EMBEDDINGS, {"model": MODEL, "input": []}, "invalid input", "input"),
    ("input-missing", EMBEDDINGS, {"model": MODEL}, "invalid input", "input"),
    (
        "input-tokens",
        EMBEDDINGS,
        {"model": MODEL, "input": [[1, 2, 3]]},
        "token arrays are not supported",
        "input",
    ),
    (
        "dimensions-zero",
        EMBEDDINGS,
        {"model": MODEL, "input": "x", "dimensions": 0},
        "Invalid 'dimensions'",
        "dimensions",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "message", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_requests_are_400_with_the_envelope(
    client: httpx.Client, path: str, body: Any, message: str, param: str | None
) -> None:
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, _chat(model="nope")),
        (CHAT, _chat(model="nope", stream=True)),
        (COMPLETIONS, {"model": "nope", "prompt": "x", "stream": True}),
        (EMBEDDINGS, {"model": "nope", "input": "x"}),
    ],
    ids=["chat", "chat-stream", "completions-stream", "embeddings"],
)
def test_unknown_model_is_404_before_any_stream(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "error": {
            "message": "model 'nope' not found",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }


def test_the_sdk_raises_typed_errors_without_retrying(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model=MODEL, messages=[], max_tokens=4)
    assert bad.value.status_code == 400
    assert bad.value.type == "invalid_request_error"
    assert bad.value.param == "messages"
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="nope", messages=USER, max_tokens=4)
    assert missing.value.type == "not_found_error"


def test_native_routes_keep_ollamas_envelope(client: httpx.Client) -> None:
    r = client.post("/api/chat", json={"model": "nope", "messages": USER})
    assert r.status_code == 404
    assert r.json() == {"error": "model 'nope' not found"}


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ApiError(400, "x", "messages"), "invalid_request_error"),
        (ApiError(413, "x"), "invalid_request_error"),
        (ApiError(422, "x"), "invalid_request_error"),
        (ModelNotFound("m"), "not_found_error"),
        (ApiError(429, "x"), "rate_limit_error"),
        (EngineError("boom"), "api_error"),
        (BadRequest("x"), "invalid_request_error"),
    ],
    ids=["400", "413", "422", "404", "429", "500", "runtime-400"],
)
def test_envelope_types(exc: Exception, kind: str) -> None:
    assert openai_error_body(exc) == {
        "error": {
            "message": str(exc),
            "type": kind,
            "param": getattr(exc, "param", None),
            "code": None,
        }
    }


def test_a_full_queue_is_a_429_on_v1() -> None:
    """Ollama's native 503 becomes OpenAI's rate-limit status, which the SDK retries."""
    response = openai_error_response(ServerBusy())
    assert response.status_code == 429
    error = json.loads(response.body)["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert error["message"] == str(ServerBusy())
