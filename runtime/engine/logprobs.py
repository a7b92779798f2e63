"""Token log-probabilities, and lining them up with the text that is released.

:func:`logprobs_at` reads a batch row's logits straight from llama.cpp and
takes a log-softmax over the whole vocabulary with numpy. These are the
model's own probabilities: the raw logits, before the sampler chain applies
penalties, the grammar, top-k/top-p or temperature (llama.cpp's samplers copy
the logits, they never change them). Under greedy decoding without a
grammar the sampled token is therefore the most probable one.

Text reaches the client later than tokens do: the detokenizer holds back the
bytes of a character split across tokens, and the stop matcher holds back
text that could grow into a stop string. :class:`LogprobQueue` releases each
token's entry together with the text it produced, so every token is reported
exactly once and the reported texts join to the content.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

import llama_cpp as L
import numpy as np

from llamaport.runtime.engine.wire import TokenLogprob

__all__ = ["LogprobQueue", "logprobs_at"]


def logprobs_at(
    ctx: object,
    row: int,
    n_vocab: int,
    token: int,
    top_n: int,
    piece: Callable[[int], bytes],
    text: str,
) -> TokenLogprob:
    """``token``'s log-probability at batch row ``row`` and the ``top_n`` most likely tokens.

    ``text`` is what the token contributed to the output (possibly empty, for
    the first bytes of a split character); alternatives are named by their
    own bytes, decoded with replacement.
    """
    logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, row), shape=(n_vocab,))
    peak = float(logits.max())
    log_z = peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))
    top: tuple[TokenLogprob, ...] = ()
    if top_n > 0:
        best = np.argpartition(logits, -top_n)[-top_n:]
        best = best[np.argsort(-logits[best], kind="stable")]
        top = tuple(_entry(piece(int(i)), float(logits[i]) - log_z, None) for i in best.tolist())
    return _entry(piece(token), float(logits[token]) - log_z, text, top)


def _entry(
    raw: bytes, logprob: float, text: str | None, top: tuple[TokenLogprob, ...] = ()
) -> TokenLogprob:
    shown = raw.decode("utf-8", errors="replace") if text is None else text
    return TokenLogprob(token=shown, logprob=logprob, bytes=raw, top=top)


class LogprobQueue:
    """Entries wait here until the text they produced is released."""

    def __init__(self) -> None:
        self._queue: deque[TokenLogprob] = deque()
        self._credit = 0
        """Released characters not yet matched to a waiting entry."""

    def add(self, entry: TokenLogprob) -> None:
        self._queue.append(entry)

    def release(self, n_chars: int) -> tuple[TokenLogprob, ...]:
        """The entries whose text is now wholly released (``n_chars`` more characters)."""
        self._credit += n_chars
        out: list[TokenLogprob] = []
        while self._queue and len(self._queue[0].token) <= self._credit:
            entry = self._queue.popleft()
            self._credit -= len(entry.token)
            out.append(entry)
        return tuple(out)

    def cut(self) -> tuple[TokenLogprob, ...]:
        """Generation stopped inside the held text (a stop string): the entry the
        released text ends in is reported with the part that was released, and
        the entries after it are dropped with the text they produced."""
        partial = self._queue[0] if self._queue and self._credit else None
        self._queue.clear()
        credit, self._credit = self._credit, 0
        return () if partial is None else (replace(partial, token=partial.token[:credit]),)
