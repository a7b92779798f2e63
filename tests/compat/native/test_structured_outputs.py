"""Native ``format``: grammar-constrained decoding guarantees valid output.

The model is tiny, so these tests assert only what the grammar guarantees:
the text parses and validates against the schema whenever generation ended
on its own (``done_reason: stop``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import MODEL

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}
ENUM = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("schema", [PERSON, ENUM], ids=["person", "enum"])
@pytest.mark.parametrize("seed", [1, 2])
def test_chat_output_validates_against_the_schema(
    client: httpx.Client, schema: dict[str, Any], seed: int
) -> None:
    r = client.post(
        "/api/chat",
        json={
            "model": MODEL,
            "stream": False,
            "messages": [{"role": "user", "content": "Tell me about someone."}],
            "format": schema,
            "options": {"num_predict": 160, "seed": seed, "temperature": 0.7},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["done_reason"] == "stop"
    jsonschema.validate(json.loads(body["message"]["content"]), schema)


def test_streamed_generate_with_a_schema_concatenates_to_valid_json(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "prompt": "Is water wet?",
        "format": ENUM,
        "options": {"num_predict": 64, "temperature": 0},
    }
    with client.stream("POST", "/api/generate", json=body) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert lines[-1]["done_reason"] == "stop"
    jsonschema.validate(json.loads("".join(x["response"] for x in lines)), ENUM)


def test_json_format_gives_a_json_object(client: httpx.Client) -> None:
    r = client.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": "Reply with an empty JSON object.",
            "stream": False,
            "format": "json",
            "options": {"num_predict": 256, "temperature": 0},
        },
    )
    out = r.json()
    assert out["response"].lstrip().startswith("{")
    if out["done_reason"] == "stop":
        assert isinstance(json.loads(out["response"]), dict)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({"type": "objectx"}, "invalid JSON schema"),
        ({"$ref": "#/definitions/missing"}, "invalid JSON schema"),
        (
            {"type": "object", "properties": {"n": {"type": "number", "maximum": 9}}},
            "JSON schema keyword 'maximum' at #/properties/n cannot be enforced",
        ),
        ({"type": "array", "uniqueItems": True}, "keyword 'uniqueItems' at #"),
        ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer lies in [5, 4]"),
        ("xml", 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object'),
        (5, 'invalid format: "5"; expected "json" or a valid JSON Schema object'),
    ],
    ids=[
        "unknown-type",
        "dangling-ref",
        "unenforced-maximum",
        "unenforced-unique",
        "empty-integer-range",
        "xml",
        "number",
    ],
)
def test_formats_that_cannot_become_a_grammar_are_400(
    client: httpx.Client, fmt: object, message: str
) -> None:
    r = client.post("/api/generate", json={"model": MODEL, "prompt": "x", "format": fmt})
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert client.get("/api/version").status_code == 200


RANGED = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": -5, "exclusiveMaximum": 13},
        "big": {"type": "integer", "minimum": 1000},
    },
    "required": ["n", "big"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integer_bounds_are_enforced(client: httpx.Client, seed: int) -> None:
    body = {
        "model": MODEL,
        "prompt": "Pick two numbers.",
        "stream": False,
        "format": RANGED,
        "options": {"num_predict": 64, "temperature": 1.5, "seed": seed},
    }
    out = client.post("/api/generate", json=body).json()
    assert out["done_reason"] == "stop", out
    jsonschema.validate(json.loads(out["response"]), RANGED)
