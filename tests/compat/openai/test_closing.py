"""JSON that always closes on ``/v1``: ``response_format`` and forced tool calls
under a small ``max_tokens`` give a document that validates, ``finish_reason``
stays ``length``, and the choice (or the header) says it was closed."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import openai
import pytest

from tests.conftest import MODEL

ASK: list[Any] = [{"role": "user", "content": "Describe a pet at great length."}]
PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "legs": {"type": "integer", "minimum": 2, "maximum": 8},
        "mood": {"enum": ["happy", "sad"]},
        "toys": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["name", "legs", "mood", "toys"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "pet", "schema": PET}}
TOOL: Any = {
    "type": "function",
    "function": {"name": "adopt", "description": "Adopt a pet.", "parameters": PET},
}


def _minimum(oai: openai.OpenAI, **fields: Any) -> int:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1, **fields)
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["type"] == "invalid_request_error"  # OpenAI's envelope, unwrapped by the SDK
    match = re.search(r"needs (\d+) tokens", body["message"])
    assert match, body
    return int(match.group(1))


def test_response_format_closes_at_max_tokens(oai: openai.OpenAI) -> None:
    smallest = _minimum(oai, response_format=RESPONSE_FORMAT)
    closed = 0
    for extra, temperature, seed in [(0, 0.0, 1), (2, 1.2, 2), (8, 0.8, 3)]:
        raw = oai.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=ASK,
            response_format=RESPONSE_FORMAT,
            max_tokens=smallest + extra,
            temperature=temperature,
            seed=seed,
        )
        completion = raw.parse()
        choice = completion.choices[0]
        jsonschema.validate(json.loads(choice.message.content or ""), PET)
        extra_fields = choice.model_extra or {}
        if extra_fields.get("llamaport_closed"):
            closed += 1
            assert choice.finish_reason == "length"
            assert raw.headers["x-llamaport-closed"] == "json"
    assert closed


def test_a_streamed_response_format_flags_the_finishing_chunk(oai: openai.OpenAI) -> None:
    smallest = _minimum(oai, response_format=RESPONSE_FORMAT)
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=ASK,
        response_format=RESPONSE_FORMAT,
        max_tokens=smallest,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), PET)
    last = [c.choices[0] for c in chunks if c.choices][-1]
    assert last.finish_reason == "length" and (last.model_extra or {})["llamaport_closed"]


def test_json_object_closes_at_max_tokens(oai: openai.OpenAI) -> None:
    for limit in (1, 3, 7):
        completion = oai.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format={"type": "json_object"},
            max_tokens=limit,
            temperature=1.0,
            seed=limit,
        )
        assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "adopt"}}]
)
def test_a_forced_tool_call_closes_into_valid_arguments(oai: openai.OpenAI, choice: Any) -> None:
    smallest = _minimum(oai, tools=[TOOL], tool_choice=choice)
    for extra, seed in [(0, 1), (4, 2)]:
        completion = oai.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[TOOL],
            tool_choice=choice,
            max_tokens=smallest + extra,
            temperature=1.0,
            seed=seed,
        )
        [call] = completion.choices[0].message.tool_calls or []
        assert call.type == "function" and call.function.name == "adopt"
        jsonschema.validate(json.loads(call.function.arguments), PET)
        assert completion.choices[0].finish_reason == "length"


def test_the_responses_api_closes_text_format(oai: openai.OpenAI) -> None:
    smallest = _minimum(oai, response_format=RESPONSE_FORMAT)
    raw = oai.responses.with_raw_response.create(
        model=MODEL,
        input="Describe a pet at great length.",
        text={"format": {"type": "json_schema", "name": "pet", "schema": PET}},
        max_output_tokens=smallest,
        store=False,
    )
    response = raw.parse()
    jsonschema.validate(json.loads(response.output_text), PET)
    assert response.status == "incomplete"
    assert (response.model_extra or {})["llamaport_closed"] is True
    assert raw.headers["x-llamaport-closed"] == "json"
