"""The grammar's fast path: draw first, check one token, fall back to masking the
whole vocabulary only on a rejection. Under greedy decoding it must pick exactly
what a chain applying the grammar to every token picks, step after step."""

from __future__ import annotations

from collections.abc import Callable

import llama_cpp as L
import pytest

from llamaport.runtime.engine.grammar import grammar_sampler
from llamaport.runtime.engine.sampler import Sampler
from llamaport.runtime.engine.wire import SamplingParams
from llamaport.runtime.engine.worker import Engine
from tests.runtime.engine._batch import decode

PROMPT = (
    "<|im_start|>user\nDescribe a cat as JSON with its name and age.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
SCHEMA = '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}'


def _generate(engine: Engine, sample: Callable[[int], int], steps: int = 40) -> list[int]:
    L.llama_memory_clear(L.llama_get_memory(engine.ctx), True)
    feed = engine.tokenize_text(PROMPT, special=True)
    pos = 0
    out: list[int] = []
    for _ in range(steps):
        token = sample(decode(engine, feed, pos))
        pos += len(feed)
        if L.llama_vocab_is_eog(engine.vocab, token):
            break
        out.append(token)
        feed = [token]
    return out


@pytest.mark.parametrize("fmt", ["json", SCHEMA])
def test_fast_path_matches_the_full_grammar_under_greedy(engine: Engine, fmt: str) -> None:
    sampler = Sampler(
        SamplingParams(temperature=0, format=fmt), engine.vocab, engine.info.n_vocab, 512
    )
    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(chain, grammar_sampler(engine.vocab, fmt))
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
    try:
        fast = _generate(engine, lambda row: sampler.sample(engine.ctx, row))
        full = _generate(engine, lambda row: int(L.llama_sampler_sample(chain, engine.ctx, row)))
    finally:
        sampler.close()
        L.llama_sampler_free(chain)
    assert fast == full
    assert len(fast) > 5
