"""Decoding a few tokens by hand, for tests that need real logits."""

from __future__ import annotations

import llama_cpp as L

from llamaport.runtime.engine.worker import Engine


def decode(engine: Engine, tokens: list[int], start: int = 0) -> int:
    """Decode ``tokens`` on sequence 0 from position ``start``; the batch row that
    holds the last token's logits."""
    batch = L.llama_batch_init(len(tokens), 0, 1)
    try:
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        assert L.llama_decode(engine.ctx, batch) == 0
    finally:
        L.llama_batch_free(batch)
    return len(tokens) - 1
