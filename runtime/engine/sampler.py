"""One llama.cpp sampler chain per sequence, built from Ollama's options.

Chains are stateful (penalty window, RNG), so each sequence owns one and
frees it when it finishes. The order follows llama.cpp's common sampler:
penalties, the grammar (structured output), then top-k, typical, top-p, min-p,
temperature and the final draw.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import llama_cpp as L

from llamaport.runtime.engine.grammar import grammar_sampler
from llamaport.runtime.engine.wire import SamplingParams

__all__ = ["Sampler"]


class Sampler:
    """Owns a native sampler chain; call :meth:`close` exactly once."""

    def __init__(self, params: SamplingParams, vocab: object, n_vocab: int, n_ctx: int) -> None:
        grammar = None
        if params.format:
            grammar = grammar_sampler(
                vocab, params.format, params.think_budget, params.think_opened
            )
        self._chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        self._penalties = None
        last_n = n_ctx if params.repeat_last_n < 0 else params.repeat_last_n
        self.window = last_n
        penalised = (
            params.repeat_penalty != 1.0
            or params.presence_penalty != 0.0
            or params.frequency_penalty != 0.0
        )
        if last_n > 0 and penalised:
            self._penalties = L.llama_sampler_init_penalties(
                n_vocab,
                last_n,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
            self._add(self._penalties)
        if grammar is not None:
            self._add(grammar)
        if params.temperature <= 0:
            self._add(L.llama_sampler_init_greedy())
            return
        if params.top_k > 0:
            self._add(L.llama_sampler_init_top_k(params.top_k))
        if 0 < params.typical_p < 1:
            self._add(L.llama_sampler_init_typical(params.typical_p, 1))
        if 0 < params.top_p < 1:
            self._add(L.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0:
            self._add(L.llama_sampler_init_min_p(params.min_p, 1))
        self._add(L.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed >= 0 else random.getrandbits(32)
        self._add(L.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def _add(self, sampler: object) -> None:
        L.llama_sampler_chain_add(self._chain, sampler)

    def accept_prompt(self, tokens: Iterable[int]) -> None:
        """Feed prompt tokens to the penalty window only, as Ollama does.

        The other stages must not see the prompt (a grammar stage, for one,
        would reject it), so the tokens go to the penalties sampler directly.
        """
        if self._penalties is None:
            return
        for token in tokens:
            L.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: object, row: int) -> int:
        """Sample from batch row ``row``'s logits; the chain accepts the token."""
        return int(L.llama_sampler_sample(self._chain, ctx, row))

    def close(self) -> None:
        if self._chain is not None:
            L.llama_sampler_free(self._chain)
            self._chain = None
