"""``response_format`` on ``/v1``: the runtime's grammar makes a tiny model's JSON valid.

Assertions hold whatever the model says: output that ended on its own
(``finish_reason: stop``) must parse and validate.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import MODEL

ASK: list[Any] = [{"role": "user", "content": "Describe a pet as JSON."}]


class Pet(BaseModel):
    name: Annotated[str, Field(max_length=20)]
    age: int
    toys: Annotated[list[Annotated[str, Field(max_length=12)]], Field(max_length=3)]
    mood: Literal["happy", "sad"]


@pytest.mark.parametrize("seed", [1, 2])
def test_parse_gives_a_validated_instance(oai: openai.OpenAI, seed: int) -> None:
    completion = oai.chat.completions.parse(
        model=MODEL,
        messages=ASK,
        response_format=Pet,
        max_completion_tokens=160,
        temperature=0.7,
        seed=seed,
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, Pet)
    assert Pet.model_validate_json(message.content or "") == message.parsed


def test_json_object_gives_a_json_object(oai: openai.OpenAI) -> None:
    """Kept short: the generic JSON grammar lets a tiny model nest forever, slowly."""
    completion = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Reply with an empty JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=48,
        temperature=0,
    )
    choice = completion.choices[0]
    assert (choice.message.content or "").lstrip().startswith("{")
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(choice.message.content or ""), dict)


def test_text_format_is_plain_generation(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        response_format={"type": "text"},
        max_tokens=8,
        temperature=0,
    )
    assert not (completion.choices[0].message.content or "").lstrip().startswith("{")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_schema_the_grammar_cannot_enforce_is_a_400(oai: openai.OpenAI, stream: bool) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}}
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format=response_format,
            max_tokens=8,
            stream=stream,
        )
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert "'maximum'" in caught.value.message
