"""JSON that always closes: ``format`` under a token limit still yields a valid document.

When the limit is near, the engine writes the cheapest completion of the
document itself; ``done_reason`` stays ``length``, the reply says it was closed
(``X-Llamaport-Closed: json``, ``llamaport_closed`` in the final chunk), and a
limit too small for the smallest document is a 400 that names the minimum.
The model is tiny: these tests assert the guarantee, never the content.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import MODEL

NESTED = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "color": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}},
            "required": ["city", "zip"],
        },
    },
    "required": ["name", "age", "color", "tags", "address"],
}
CHOICE = {
    "type": "object",
    "properties": {
        "pick": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/point"}]},
        "note": {"type": "string"},
    },
    "required": ["note", "pick"],
    "$defs": {
        "point": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
        }
    },
}
PROMPT = "Describe a person in great detail, with a very long name."


def _generate(
    client: httpx.Client, fmt: Any, options: dict[str, Any], prompt: str = PROMPT, **extra: Any
) -> httpx.Response:
    """A non-streamed ``/api/generate`` of ``prompt`` in ``fmt``."""
    body = {"model": MODEL, "prompt": prompt, "format": fmt, "stream": False, "options": options}
    return client.post("/api/generate", json={**body, **extra})


def _minimum(client: httpx.Client, fmt: Any) -> int:
    """The smallest limit, read from the 400 for a limit of 1."""
    r = _generate(client, fmt, {"num_predict": 1})
    assert r.status_code == 400, r.text
    match = re.search(r"needs (\d+) tokens", r.json()["error"])
    assert match, r.text
    return int(match.group(1))


@pytest.mark.parametrize("schema", [NESTED, CHOICE], ids=["nested", "anyof-ref"])
def test_every_cut_reply_is_a_valid_document(client: httpx.Client, schema: dict[str, Any]) -> None:
    smallest = _minimum(client, schema)
    closed = 0
    for extra, temperature, seed in [(0, 0.0, 1), (1, 1.0, 2), (3, 1.5, 3), (9, 0.8, 4)]:
        r = client.post(
            "/api/chat",
            json={
                "model": MODEL,
                "stream": False,
                "messages": [{"role": "user", "content": PROMPT}],
                "format": schema,
                "options": {
                    "num_predict": smallest + extra,
                    "seed": seed,
                    "temperature": temperature,
                },
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        jsonschema.validate(json.loads(body["message"]["content"]), schema)
        assert body["eval_count"] <= smallest + extra
        if body.get("llamaport_closed"):
            closed += 1
            assert body["done_reason"] == "length"
            assert r.headers["X-Llamaport-Closed"] == "json"
        else:
            assert "X-Llamaport-Closed" not in r.headers
    assert closed, "at these limits the tiny model is always cut"


def test_a_cut_emoji_is_finished_before_the_document_closes(client: httpx.Client) -> None:
    """Each emoji is three tokens of this model's: at most limits the reply is cut
    inside one, and the closing tokens must finish that character first (before they
    did, llama.cpp refused them and the reply ended unclosed)."""
    schema = {
        "type": "object",
        "properties": {"pet": {"type": "string", "pattern": "^[🐀-🐿]{1,40}$"}},
        "required": ["pet"],
    }
    smallest = _minimum(client, schema)
    closed = 0
    for limit in range(smallest + 3, smallest + 27, 2):
        options = {"num_predict": limit, "seed": limit, "temperature": 1.0}
        body = _generate(client, schema, options, prompt="Name a pet with emoji.").json()
        jsonschema.validate(json.loads(body["response"]), schema)
        assert body["eval_count"] <= limit
        closed += bool(body.get("llamaport_closed"))
    assert closed, "at these limits the tiny model is always cut"


def test_the_smallest_limit_gives_the_smallest_document(client: httpx.Client) -> None:
    smallest = _minimum(client, NESTED)
    body = _generate(client, NESTED, {"num_predict": smallest, "temperature": 0}).json()
    assert body["llamaport_closed"] is True and body["done_reason"] == "length"
    assert body["eval_count"] == smallest
    jsonschema.validate(json.loads(body["response"]), NESTED)


def test_a_streamed_reply_says_closed_in_its_final_chunk(client: httpx.Client) -> None:
    smallest = _minimum(client, NESTED)
    lines = []
    with client.stream(
        "POST",
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": PROMPT,
            "format": NESTED,
            "options": {"num_predict": smallest + 5, "seed": 7, "temperature": 1.0},
        },
    ) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    final = lines[-1]
    assert final["done"] and final["done_reason"] == "length" and final["llamaport_closed"]
    assert not any("llamaport_closed" in line for line in lines[:-1])
    jsonschema.validate(json.loads("".join(line["response"] for line in lines)), NESTED)


def test_format_json_closes_what_is_open(client: httpx.Client) -> None:
    for limit, seed in [(1, 1), (2, 2), (5, 3), (12, 4)]:
        r = _generate(client, "json", {"num_predict": limit, "seed": seed, "temperature": 1.0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(json.loads(body["response"]), dict)
        assert body["eval_count"] <= limit


def test_a_limit_below_the_smallest_document_is_a_400(client: httpx.Client) -> None:
    for stream in (False, True):
        r = client.post(
            "/api/chat",
            json={
                "model": MODEL,
                "stream": stream,
                "format": NESTED,
                "messages": [{"role": "user", "content": "hi"}],
                "options": {"num_predict": 3},
            },
        )
        assert r.status_code == 400, r.text
        assert "token limit of 3 " in r.json()["error"] and "needs" in r.json()["error"]


def test_without_a_limit_nothing_is_closed(client: httpx.Client) -> None:
    yes = {"type": "object", "properties": {"a": {"enum": ["yes"]}}, "required": ["a"]}
    r = _generate(client, yes, {"temperature": 0}, prompt="Say yes.")
    assert r.status_code == 200
    assert "llamaport_closed" not in r.json()
    assert "X-Llamaport-Closed" not in r.headers


@pytest.mark.parametrize(
    "schema", [{"type": "number"}, {"type": "string", "minLength": 4}, {"type": "array"}]
)
def test_a_scalar_or_open_document_closes_too(client: httpx.Client, schema: Any) -> None:
    """A number can always go on (``1`` → ``12`` → ``12e``): a complete document whose
    next token would not fit ends there, still valid."""
    answered = 0
    for limit, seed in [(2, 1), (3, 2), (4, 3), (6, 4)]:
        options = {"num_predict": limit, "seed": seed, "temperature": 1.5}
        r = _generate(client, schema, options, prompt="Write 123456789.")
        if r.status_code == 400:  # below this schema's minimum
            assert "too small for the format" in r.json()["error"]
            continue
        answered += 1
        body = r.json()
        jsonschema.validate(json.loads(body["response"]), schema)
        assert body["eval_count"] <= limit
    assert answered


def test_the_closing_tokens_carry_logprobs_like_any_other(client: httpx.Client) -> None:
    smallest = _minimum(client, NESTED)
    options = {"num_predict": smallest, "temperature": 0}
    body = _generate(client, NESTED, options, logprobs=True).json()
    assert body["llamaport_closed"]
    assert len(body["logprobs"]) == body["eval_count"]
    assert "".join(e["token"] for e in body["logprobs"]) == body["response"]
