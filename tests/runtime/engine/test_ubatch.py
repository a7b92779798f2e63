"""Sequences decoding together go to llama.cpp as one ubatch per step.

With one KV stream per slot, llama.cpp splits a batch into ubatches of
consecutive sequence ids, in the order the batch lists them. Each extra ubatch
reads every weight again, so the batcher lists sequences in slot order and
keeps busy slots next to each other. What shows it without timing anything is
llama.cpp's own graph reuse: a step reuses the previous step's compute graph
only when both were the same single ubatch, so ``n_reused`` grows by one per
step exactly when each step is one ubatch.
"""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp as L
import pytest

from llamaport.runtime.engine.batcher import Batcher
from llamaport.runtime.engine.wire import Done, Event, LoadSpec, SamplingParams, Segment, Submit
from llamaport.runtime.engine.worker import Engine
from llamaport.storage.embedded import embedded_gguf_path

SLOTS = 4
PROSE = [
    "The history of the city of Rome begins with",
    "In the morning the fishermen of the northern coast",
    "A good recipe for bread starts with flour, water and",
    "The train left the station slowly, and the passengers",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    path = embedded_gguf_path()
    assert path is not None
    eng = Engine(LoadSpec(model_path=str(path), n_ctx=256, n_parallel=SLOTS, n_threads=2))
    yield eng
    eng.close()


class _Run:
    """A batcher on ``engine`` and the events it emitted."""

    def __init__(self, engine: Engine) -> None:
        L.llama_memory_clear(L.llama_get_memory(engine.ctx), True)
        self.ctx = engine.ctx
        self.events: list[Event] = []
        self.batcher = Batcher(engine.batch_model(), SLOTS, self.events.append)
        self._rid = 0

    def submit(self, text: str, tokens: int) -> int:
        self._rid += 1
        params = SamplingParams(temperature=0, seed=1, num_predict=tokens)
        self.batcher.submit(Submit(self._rid, (Segment(text),), params))
        return self._rid

    def done(self) -> list[int]:
        return [e.rid for e in self.events if isinstance(e, Done)]

    def finish(self, rids: list[int]) -> None:
        for _ in range(200):
            if set(rids) <= set(self.done()):
                return
            self.batcher.admit()
            self.batcher.step()
        raise AssertionError(f"not finished in 200 steps: {self.events}")

    def reused_over(self, steps: int) -> int:
        """Graphs llama.cpp reused over ``steps`` decode steps, after one step to
        admit and prefill."""
        self.batcher.admit()
        self.batcher.step()
        before = L.llama_perf_context(self.ctx).n_reused
        for _ in range(steps):
            self.batcher.step()
        return int(L.llama_perf_context(self.ctx).n_reused - before)

    def slot_of(self, rid: int) -> int:
        return next(s.slot.seq_id for s in self.batcher._active if s.rid == rid)


def test_sequences_admitted_out_of_slot_order_decode_as_one_ubatch(engine: Engine) -> None:
    """Each prompt comes back to the slot holding its prefix, in reverse arrival
    order: listed in arrival order, every step was four ubatches."""
    run = _Run(engine)
    run.finish([run.submit(text, 4) for text in PROSE])
    rids = [run.submit(text + " the", 16) for text in reversed(PROSE)]
    assert run.reused_over(6) >= 5
    assert [run.slot_of(r) for r in rids] == [3, 2, 1, 0]
    run.batcher.close()


def test_a_new_sequence_takes_a_slot_next_to_a_busy_one(engine: Engine) -> None:
    """Slots last used in the order 0, 2, 1, 3: least recently used alone would put
    two new sequences in slots 0 and 2, two ubatches a step."""
    run = _Run(engine)
    first = [run.submit(text, n) for text, n in zip(PROSE, (2, 8, 5, 11), strict=True)]
    run.finish(first)
    assert run.done() == [first[0], first[2], first[1], first[3]]
    rids = [run.submit("Zebras " + text, 16) for text in PROSE[:2]]
    assert run.reused_over(6) >= 5
    assert [run.slot_of(r) for r in rids] == [0, 1]
    run.batcher.close()
