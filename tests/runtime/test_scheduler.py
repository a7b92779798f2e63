"""The scheduler and engine processes, seen through a real server, and its
queue, keep-alive and eviction rules with engines that spawn nothing.

Each server test starts its own server, because each needs its own limits or
kills an engine. Prompts and generations are kept short; the long prompt
here only serves to hold a sequence in prefill for a few seconds on a CPU,
in an engine process driven directly, so the test can wait on the event
that says prefill has begun.

The rules' tests give the scheduler an engine factory (as Ollama's
``sched_test.go`` swaps ``newServerFn``) whose engines only record that they
were started and stopped, so the order of events is set by the test and
waited on, never guessed with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.wire import (
    Done,
    EngineInfo,
    LoadSpec,
    SamplingParams,
    Segment,
    Started,
)
from llamaport.runtime.errors import ServerBusy
from llamaport.runtime.options import LoadOptions
from llamaport.runtime.scheduler import Scheduler
from llamaport.storage.embedded import embedded_gguf_path
from llamaport.storage.manifest import MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL, Layer, Manifest
from llamaport.storage.names import parse_name
from llamaport.storage.settings import load_settings
from llamaport.storage.store import ModelRecord, Store
from tests.conftest import MODEL, Server

LONG_PROMPT = "The quick brown fox jumps over the lazy dog. " * 180  # about 1,800 tokens


def _final(lines: list[str]) -> dict[str, Any]:
    last: dict[str, Any] = json.loads(lines[-1])
    return last


def _generate(srv: Server, **body: Any) -> dict[str, Any]:
    with srv.client() as c:
        r = c.post("/api/generate", json={"model": MODEL, "stream": False, **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _ps(srv: Server) -> list[dict[str, Any]]:
    with srv.client() as c:
        models: list[dict[str, Any]] = c.get("/api/ps").json()["models"]
        return models


def test_killed_engine_fails_its_requests_then_restarts(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server()
    _generate(srv, prompt="hi", options={"num_predict": 2})
    (engine,) = srv.engine_pids()
    lines: list[str] = []
    with (
        srv.client() as c,
        c.stream(
            "POST",
            "/api/generate",
            json={
                "model": MODEL,
                "prompt": "Count from 1 to 500.",
                "options": {"num_predict": 400},
            },
        ) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            lines.append(line)
            if len(lines) == 2:
                os.kill(engine, signal.SIGKILL)
    last = _final(lines)
    assert "llama runner process has terminated" in last["error"]
    assert _ps(srv) == []
    again = _generate(srv, prompt="hi", options={"num_predict": 2})
    assert again["done"] is True
    assert srv.engine_pids() != [engine]


def test_an_engine_that_dies_while_idle_is_reloaded(start_server: Callable[..., Server]) -> None:
    srv = start_server()
    _generate(srv, prompt="hi", options={"num_predict": 2})
    (engine,) = srv.engine_pids()
    os.kill(engine, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _ps(srv) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _generate(srv, prompt="hi", options={"num_predict": 2})["done"] is True


async def test_a_request_that_leaves_during_prefill_frees_its_sequence() -> None:
    """A client gone mid-prefill (the server closes the request's event stream on a
    hang-up, ``compat/streaming.py``) stops its sequence within the chunk.

    The engine's ``Started`` event says the prompt holds the one slot and its
    prefill has begun, so the cancel is sent then: waited on, not timed.
    """
    path = embedded_gguf_path()
    assert path is not None
    engine = EngineClient(LoadSpec(model_path=str(path), n_ctx=2048, n_parallel=1, n_threads=1))
    await engine.start(timeout=60)
    try:
        prompt = (Segment(LONG_PROMPT),)
        stream = engine.generate(prompt, SamplingParams(temperature=0, num_predict=200), False)
        started = await asyncio.wait_for(anext(stream), 60)
        assert isinstance(started, Started) and started.cached == 0
        await stream.aclose()  # what a hang-up does: Cancel, mid-prefill
        # Had the sequence gone on, this identical prompt would wait for it and
        # then find all of it cached; cancelled mid-prefill, at most the
        # finished chunks are.
        again = engine.generate(prompt, SamplingParams(temperature=0, num_predict=1), False)
        events = [event async for event in again]
        first = events[0]
        assert isinstance(first, Started) and first.prompt_tokens == started.prompt_tokens
        assert first.cached < first.prompt_tokens - 1
        assert isinstance(events[-1], Done)
    finally:
        await engine.stop()


def test_keep_alive_unloads_after_its_duration(start_server: Callable[..., Server]) -> None:
    srv = start_server()
    _generate(srv, prompt="hi", keep_alive="1s", options={"num_predict": 1})
    assert [m["name"] for m in _ps(srv)] == [MODEL]
    deadline = time.monotonic() + 15
    while (_ps(srv) or srv.engine_pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ps(srv) == []
    assert srv.engine_pids() == []


def test_negative_keep_alive_keeps_the_model_forever(server: Server) -> None:
    _generate(server, keep_alive=-1)
    (entry,) = [m for m in _ps(server) if m["name"] == MODEL]
    assert datetime.fromisoformat(entry["expires_at"]).year > 2200
    _generate(server, keep_alive="5m")


def _second_model(home: Path) -> str:
    """Register ``other:latest``: the embedded GGUF with another basename."""
    src = embedded_gguf_path()
    assert src is not None
    data = bytearray(src.read_bytes())
    key = data.index(b"general.basename")
    value = key + len(b"general.basename") + 4 + 8
    assert data[value : value + 7] == b"smollm2"
    data[value : value + 7] = b"smollm3"
    copy = home / "other.gguf"
    home.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(bytes(data))
    store = Store(home / "models")
    weights = store.import_blob_file(copy)
    config = store.write_blob_bytes(b'{"model_format":"gguf"}')
    store.write_manifest(
        parse_name("other"),
        Manifest(
            config=Layer(MEDIA_TYPE_CONFIG, config.digest, config.size),
            layers=[Layer(MEDIA_TYPE_MODEL, weights.digest, weights.size)],
        ),
    )
    return "other:latest"


def test_max_loaded_models_evicts_the_least_recently_used(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    home = tmp_path / "evict"
    other = _second_model(home)
    srv = start_server(home=home, LLAMAPORT_MAX_LOADED_MODELS="1")
    _generate(srv, prompt="hi", options={"num_predict": 1})
    assert [m["name"] for m in _ps(srv)] == [MODEL]
    r = _generate(srv, model=other, prompt="hi", options={"num_predict": 1})
    assert r["model"] == other
    assert [m["name"] for m in _ps(srv)] == [other]
    assert len(srv.engine_pids()) == 1


def test_parallel_streams_all_finish(server: Server) -> None:
    results: list[dict[str, Any]] = []

    def one(i: int) -> None:
        with server.client() as c:
            r = c.post(
                "/api/chat",
                json={
                    "model": MODEL,
                    "stream": False,
                    "messages": [{"role": "user", "content": f"Say the number {i}."}],
                    "options": {"num_predict": 16, "seed": i},
                },
            )
            results.append(r.json())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 8
    assert all(r["done"] and r["eval_count"] > 0 for r in results)


def test_a_second_chat_turn_evaluates_only_new_tokens(server: Server) -> None:
    history = [{"role": "user", "content": "Name a colour."}]
    opts = {"num_predict": 8, "temperature": 0}
    with server.client() as c:
        first = c.post(
            "/api/chat",
            json={"model": MODEL, "messages": history, "stream": False, "options": opts},
        ).json()
        history += [first["message"], {"role": "user", "content": "Another one?"}]
        second = c.post(
            "/api/chat",
            json={"model": MODEL, "messages": history, "stream": False, "options": opts},
        ).json()
    assert second["prompt_cached_count"] >= first["prompt_eval_count"]
    assert second["prompt_eval_count"] > second["prompt_cached_count"]


def test_server_shutdown_stops_its_engines(start_server: Callable[..., Server]) -> None:
    srv = start_server()
    _generate(srv, prompt="hi", options={"num_predict": 1})
    (engine,) = srv.engine_pids()
    srv.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{engine}").exists() or "Z" in Path(f"/proc/{engine}/stat").read_text()


# -- the rules, with engines that spawn no process ------------------------------------

_INFO = EngineInfo(512, 512, 1, 1, 1, 1, 0, False, 0, "fake", 0)


class _Engine(EngineClient):
    """Starts and stops without a process; ``stopped`` is set when the scheduler unloads it."""

    def __init__(self, spec: LoadSpec, debug: bool = False) -> None:
        super().__init__(spec, debug)
        self.stopped = asyncio.Event()

    async def start(self, timeout: float) -> EngineInfo:
        self.info, self.alive = _INFO, True
        return _INFO

    async def stop(self) -> None:
        self.alive = False
        self.stopped.set()


def _record(name: str) -> ModelRecord:
    config = Layer(MEDIA_TYPE_CONFIG, "sha256:" + "0" * 64, 0)
    return ModelRecord(
        name=parse_name(name),
        digest="",
        size=0,
        modified_at=datetime.now(),
        model_path=Path(f"/models/{name}.gguf"),
        adapters=[],
        projectors=[],
        template=None,
        system=None,
        params={},
        messages=[],
        license=[],
        config={},
        manifest=Manifest(config=config, layers=[]),
    )


def _scheduler(tmp_path: Path, **env: str) -> tuple[Scheduler, list[_Engine]]:
    engines: list[_Engine] = []

    def factory(spec: LoadSpec, debug: bool) -> EngineClient:
        engines.append(_Engine(spec, debug))
        return engines[-1]

    settings = load_settings({"LLAMAPORT_HOME": str(tmp_path), **env})
    return Scheduler(settings, engine_factory=factory), engines


LOAD = LoadOptions(num_ctx=512)


def test_a_full_queue_refuses_until_a_place_frees(tmp_path: Path) -> None:
    scheduler, _ = _scheduler(tmp_path, LLAMAPORT_MAX_QUEUE="1")
    ticket = scheduler.admit()
    with pytest.raises(ServerBusy, match="maximum pending requests exceeded"):
        scheduler.admit()
    ticket.done()
    ticket.done()  # a second done gives back nothing more
    scheduler.admit()
    with pytest.raises(ServerBusy):
        scheduler.admit()


async def test_the_least_recently_used_idle_runner_is_evicted(tmp_path: Path) -> None:
    scheduler, engines = _scheduler(tmp_path, LLAMAPORT_MAX_LOADED_MODELS="2")
    for name in ("a", "b"):
        scheduler.release(await scheduler.acquire(_record(name), LOAD, None))
    scheduler.release(await scheduler.acquire(_record("a"), LOAD, None))  # b is now the oldest
    c = await scheduler.acquire(_record("c"), LOAD, None)
    assert [e.stopped.is_set() for e in engines] == [False, True, False]
    assert {r.record.short_name for r in scheduler.running()} == {"a:latest", "c:latest"}
    scheduler.release(c)
    await scheduler.close()


async def test_a_busy_runner_is_evicted_only_once_released(tmp_path: Path) -> None:
    scheduler, engines = _scheduler(tmp_path, LLAMAPORT_MAX_LOADED_MODELS="1")
    a = await scheduler.acquire(_record("a"), LOAD, None)
    waiting = asyncio.create_task(scheduler.acquire(_record("b"), LOAD, None))
    for _ in range(20):  # let the waiting acquire run as far as it can
        await asyncio.sleep(0)
    assert not waiting.done() and not engines[0].stopped.is_set()
    scheduler.release(a)
    b = await asyncio.wait_for(waiting, 10)
    assert engines[0].stopped.is_set() and [r.record.short_name for r in scheduler.running()] == [
        "b:latest"
    ]
    scheduler.release(b)
    await scheduler.close()


@pytest.mark.parametrize("keep_alive", [0.0, 0.05], ids=["zero", "short"])
async def test_keep_alive_unloads_the_released_runner(tmp_path: Path, keep_alive: float) -> None:
    scheduler, engines = _scheduler(tmp_path)
    runner = await scheduler.acquire(_record("a"), LOAD, keep_alive)
    assert not engines[0].stopped.is_set(), "a referenced runner stays"
    scheduler.release(runner)
    await asyncio.wait_for(engines[0].stopped.wait(), 10)
    assert scheduler.running() == []
