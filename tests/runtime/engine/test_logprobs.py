"""Log-probabilities: the numpy log-softmax against a float64 reference on real
logits, and the queue that releases each token's entry with its text."""

from __future__ import annotations

import llama_cpp as L
import numpy as np
import pytest

from llamaport.runtime.engine.logprobs import LogprobQueue, logprobs_at
from llamaport.runtime.engine.wire import TokenLogprob
from llamaport.runtime.engine.worker import Engine
from tests.runtime.engine._batch import decode


def test_logprobs_are_the_models_log_softmax(engine: Engine) -> None:
    row = decode(engine, engine.tokenize_text("The capital of France is", special=False))
    n_vocab = engine.info.n_vocab
    logits = np.array(L.llama_get_logits_ith(engine.ctx, row)[:n_vocab], dtype=np.float64)
    reference = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert np.isclose(np.exp(reference).sum(), 1.0)
    some = int(np.argsort(-logits)[5])
    entry = logprobs_at(engine.ctx, row, n_vocab, some, 4, engine.piece, "x")
    assert entry.token == "x" and entry.bytes == engine.piece(some)
    assert entry.logprob == pytest.approx(reference[some], abs=1e-5)
    best = np.argsort(-reference)[:4]
    assert [alt.bytes for alt in entry.top] == [engine.piece(int(t)) for t in best]
    assert [alt.logprob for alt in entry.top] == pytest.approx(reference[best].tolist(), abs=1e-5)


def _e(token: str) -> TokenLogprob:
    return TokenLogprob(token=token, logprob=-1.0, bytes=token.encode())


def test_queue_releases_entries_with_their_text() -> None:
    queue = LogprobQueue()
    for token in ("Hel", "", "lo", " wor"):
        queue.add(_e(token))
    assert [e.token for e in queue.release(2)] == []
    assert [e.token for e in queue.release(1)] == ["Hel", ""]
    assert [e.token for e in queue.release(5)] == ["lo"]
    assert [e.token for e in queue.cut()] == [" wo"]
    assert queue.release(10) == ()


def test_queue_cut_with_nothing_released_drops_everything() -> None:
    queue = LogprobQueue()
    queue.add(_e("STOP"))
    assert queue.release(0) == ()
    assert queue.cut() == ()
