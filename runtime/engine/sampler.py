"""One llama.cpp sampler chain per sequence, built from Ollama's options.

Chains are stateful (penalty window, RNG), so each sequence owns one and
frees it when it finishes. The order follows llama.cpp's common sampler:
penalties, then top-k, typical, top-p, min-p, temperature and the final draw.

The grammar (structured output) stands apart, as in llama.cpp's common
sampler: checking every token of the vocabulary against it costs as much as
the decode itself, so a token is drawn without it first and only checked;
when the grammar rejects it, the grammar is applied to the whole vocabulary
and the token drawn again. Either way the result is a token the grammar
allows, drawn from the distribution the chain gives the allowed tokens.

:meth:`Sampler.sample` draws and accepts; the batcher's closer (structured
output at the token limit) draws first and may accept another allowed token
in the drawn one's place (:meth:`Sampler.draw`, :meth:`Sampler.allows`,
:meth:`Sampler.accept`).
"""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterable

import llama_cpp as L
import numpy as np

from llamaport.runtime.engine.grammar import grammar_sampler
from llamaport.runtime.engine.wire import SamplingParams

__all__ = ["Sampler"]

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
"""The memory layout of llama.cpp's ``llama_token_data``."""


class Sampler:
    """Owns a native sampler chain; call :meth:`close` exactly once."""

    def __init__(self, params: SamplingParams, vocab: object, n_vocab: int, n_ctx: int) -> None:
        self._grammar: object = None
        if params.format:
            self._grammar = grammar_sampler(
                vocab, params.format, params.think_budget, params.think_opened
            )
        self._n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._cur = np.zeros(n_vocab, dtype=_TOKEN_DATA) if self._grammar else None
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
        """Sample from batch row ``row``'s logits; the samplers accept the token."""
        if self._grammar is None:
            return int(L.llama_sampler_sample(self._chain, ctx, row))
        token = self.draw(ctx, row)
        self.accept(token)
        return token

    def draw(self, ctx: object, row: int) -> int:
        """With a grammar: the token it allows, drawn from row ``row`` but not yet
        accepted, so the caller may put another allowed token in its place."""
        logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, row), shape=(self._n_vocab,))
        token = self._draw(logits, constrained=False)
        if not self._allowed(token, float(logits[token])):
            token = self._draw(logits, constrained=True)
        return token

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next."""
        return self._allowed(token, 0.0)

    def accept(self, token: int) -> None:
        """Advance the grammar and the chain (penalties, RNG) past ``token``."""
        L.llama_sampler_accept(self._grammar, token)
        L.llama_sampler_accept(self._chain, token)

    def _draw(self, logits: np.ndarray, constrained: bool) -> int:
        """Run the chain (after the grammar when ``constrained``) over fresh candidates."""
        cur = self._cur
        assert cur is not None
        cur["id"] = self._ids
        cur["logit"] = logits
        cur["p"] = 0.0
        data = cur.ctypes.data_as(L.llama_token_data_p)
        candidates = L.llama_token_data_array(data, self._n_vocab, -1, False)
        if constrained:
            L.llama_sampler_apply(self._grammar, ctypes.byref(candidates))
        L.llama_sampler_apply(self._chain, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)

    def _allowed(self, token: int, logit: float) -> bool:
        """Whether the grammar accepts ``token`` next (it masks a rejected one to -inf)."""
        one = (L.llama_token_data * 1)(L.llama_token_data(token, logit, 0.0))
        candidate = L.llama_token_data_array(one, 1, -1, False)
        L.llama_sampler_apply(self._grammar, ctypes.byref(candidate))
        return bool(np.isfinite(candidate.data[0].logit))

    def close(self) -> None:
        if self._chain is not None:
            L.llama_sampler_free(self._chain)
            self._chain = None
        if self._grammar is not None:
            L.llama_sampler_free(self._grammar)
            self._grammar = None
