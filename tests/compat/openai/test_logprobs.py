"""Token log-probabilities on ``/v1``: chat ``logprobs``/``top_logprobs`` and the
legacy completions ``logprobs`` form, streamed and whole, with the openai SDK.

Under greedy decoding the sampled token is the most likely one, so its
log-probability is the best alternative's; the token texts join to the content.
"""

from __future__ import annotations

import math
from typing import Any

import openai

from tests.compat.native.test_logprobs import PROMPT, USER, check_entry
from tests.conftest import MODEL


def test_openai_chat_logprobs_stream_and_whole_agree(oai: openai.OpenAI) -> None:
    common: Any = {
        "model": MODEL,
        "messages": USER,
        "temperature": 0,
        "max_tokens": 24,
        "logprobs": True,
        "top_logprobs": 2,
    }
    whole = oai.chat.completions.create(**common)
    choice = whole.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    content = choice.logprobs.content
    assert "".join(t.token for t in content) == choice.message.content
    for token in content:
        check_entry(token.model_dump(), 2)
    streamed: list[Any] = []
    text = ""
    for chunk in oai.chat.completions.create(**common, stream=True):
        for c in chunk.choices:
            text += c.delta.content or ""
            if c.logprobs is not None and c.logprobs.content:
                streamed.extend(c.logprobs.content)
    assert text == choice.message.content
    assert [t.token for t in streamed] == [t.token for t in content]


def test_openai_chat_without_logprobs_is_null(oai: openai.OpenAI) -> None:
    out = oai.chat.completions.create(model=MODEL, messages=USER, temperature=0, max_tokens=4)
    assert out.choices[0].logprobs is None


def test_openai_legacy_completion_logprobs(oai: openai.OpenAI) -> None:
    whole = oai.completions.create(
        model=MODEL, prompt=PROMPT, temperature=0, max_tokens=24, logprobs=2
    )
    choice = whole.choices[0]
    lp = choice.logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.text_offset is not None
    assert lp.top_logprobs is not None
    assert "".join(lp.tokens) == choice.text
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
    for value, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert value <= 0 and 1 <= len(top) <= 2
        assert math.isclose(value, max(top.values()), abs_tol=1e-6)
    offsets: list[int] = []
    text = ""
    for chunk in oai.completions.create(
        model=MODEL, prompt=PROMPT, temperature=0, max_tokens=24, logprobs=2, stream=True
    ):
        c = chunk.choices[0]
        text += c.text
        if c.logprobs is not None and c.logprobs.text_offset:
            offsets.extend(c.logprobs.text_offset)
    assert text == choice.text
    assert offsets == lp.text_offset
