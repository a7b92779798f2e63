"""``POST /v1/completions`` (legacy text completions) through the OpenAI SDK."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL


@pytest.mark.parametrize("prompt", ["Once upon a time", ["Once upon a time"]], ids=["str", "list"])
def test_create(oai: openai.OpenAI, prompt: str | list[str]) -> None:
    completion = oai.completions.create(model=MODEL, prompt=prompt, max_tokens=8, temperature=0)
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.text
    assert choice.logprobs is None
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 8
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_stream_with_usage(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.completions.create(
            model=MODEL,
            prompt="Once upon a time",
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert len({c.created for c in chunks}) == 1
    assert all(c.object == "text_completion" for c in chunks)
    *body, usage = chunks
    assert usage.choices == [] and usage.usage is not None
    assert all(len(c.choices) == 1 and c.choices[0].index == 0 for c in body)
    finishes = [c for c in body if c.choices[0].finish_reason]
    assert finishes == body[-1:]
    text = "".join(c.choices[0].text for c in body)
    plain = oai.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0
    )
    assert text == plain.choices[0].text


def test_n_choices(oai: openai.OpenAI) -> None:
    completion = oai.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=4, n=2, seed=5
    )
    assert [c.index for c in completion.choices] == [0, 1]
