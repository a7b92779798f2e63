"""Failover, affinity, a mid-stream kill and a full queue, with real upstreams that
the tests start and kill (each test its own, so killing one spoils no other)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llamaport.storage.embedded import embedded_gguf_path
from tests.conftest import MODEL, UNENDING, Server, free_port
from tests.runtime.proxy.conftest import hits, route, start_proxy, upstream

ASK = [{"role": "user", "content": "Name a colour."}]
SHORT = {"temperature": 0, "seed": 1, "num_predict": 8}
LONG = {"temperature": 1.0, "seed": 3, "num_predict": 1500}


def _kill(server: Server) -> None:
    """SIGKILL the server and its engines: no graceful end for the streams it serves."""
    for pid in server.engine_pids():
        os.kill(pid, signal.SIGKILL)
    server.proc.kill()
    server.proc.wait(timeout=10)


def _pair(
    start_server: Callable[..., Server], tmp_path: Path, balance: str, **extra: str
) -> tuple[Server, Server, Server]:
    one, two = start_server(tmp_path / "one", **extra), start_server(tmp_path / "two")
    config = (
        upstream("one", "ollama", one.url)
        + upstream("two", "ollama", two.url)
        + route("m", ["one", "two"], balance)
    )
    return one, two, start_proxy(start_server, tmp_path / "proxy", config)


def _chat(client: httpx.Client, **body: Any) -> httpx.Response:
    body = {"model": "m", "messages": ASK, "stream": False, "options": SHORT, **body}
    return client.post("/api/chat", json=body)


def test_a_killed_upstream_fails_over_to_the_next_link(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, two, proxy = _pair(start_server, tmp_path, "first")
    with proxy.client() as client:
        assert _chat(client).status_code == 200
        assert (hits(one, "/api/chat"), hits(two, "/api/chat")) == (1, 0)
        _kill(one)
        assert _chat(client).status_code == 200
        assert hits(two, "/api/chat") == 1


def test_conversation_affinity_keeps_turns_then_moves_with_the_history(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, two, proxy = _pair(start_server, tmp_path, "conversation_affinity")
    with proxy.client() as client:
        conversation = client.post("/v1/conversations", json={}).json()["id"]
        for _ in range(3):
            assert _chat(client, conversation=conversation).status_code == 200
        counts = [hits(one, "/api/chat"), hits(two, "/api/chat")]
        assert sorted(counts) == [0, 3], "every turn on one upstream"
        served, other = (one, two) if counts[0] == 3 else (two, one)
        _kill(served)
        moved = _chat(client, conversation=conversation)
        assert moved.status_code == 200
        assert hits(other, "/api/chat") == 1
        fresh = _chat(client)
        assert moved.json()["prompt_eval_count"] > fresh.json()["prompt_eval_count"], (
            "the moved turn carried the stored history"
        )
        items = client.get(f"/v1/conversations/{conversation}/items").json()["data"]
        assert len(items) == 8


def test_a_response_chain_stays_on_one_upstream(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, two, proxy = _pair(start_server, tmp_path, "conversation_affinity")
    sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    previous = None
    for _ in range(3):
        done = sdk.responses.create(
            model="m", input="Another colour?", previous_response_id=previous, max_output_tokens=8
        )
        previous = done.id
    assert sorted([hits(one, "/api/chat"), hits(two, "/api/chat")]) == [0, 3]


def _stream_lines(
    client: httpx.Client, body: dict[str, Any], kill: Callable[[], None]
) -> list[str]:
    with client.stream("POST", "/api/chat", json=body) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        first = next(lines)
        kill()
        return [first, *lines]


def test_a_mid_stream_kill_ends_the_stream_with_a_clear_error(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, _, proxy = _pair(start_server, tmp_path, "first")
    body = {"model": "m", "messages": ASK, "options": LONG}
    with proxy.client() as client:
        lines = _stream_lines(client, body, lambda: _kill(one))
    last = json.loads(lines[-1])
    assert "error" in last and "one" in last["error"], lines[-3:]
    assert not any(json.loads(line).get("done") for line in lines)


def test_a_mid_stream_kill_on_v1_raises_in_the_sdk(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, _, proxy = _pair(start_server, tmp_path, "first")
    sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    stream = sdk.chat.completions.create(
        model="m",
        messages=ASK,
        stream=True,
        max_tokens=1500,
        temperature=1.0,  # type: ignore[arg-type]
    )
    chunks = iter(stream)
    next(chunks)
    _kill(one)
    with pytest.raises(openai.APIError, match="one"):
        for _ in chunks:
            pass


def _hold(url: str, stop: threading.Event) -> None:
    body = {"model": MODEL, "messages": ASK, "options": LONG, "format": UNENDING}
    with (
        httpx.Client(base_url=url, timeout=120) as client,
        client.stream("POST", "/api/chat", json=body) as resp,
    ):
        for _ in resp.iter_lines():
            if stop.is_set():
                return


def _refusals(server: Server) -> int:
    """The 503s ``server`` logged for ``/api/chat`` (its access log)."""
    return sum(1 for line in server.access("POST", "/api/chat") if line["code"] == 503)


def test_a_full_queue_503_is_retried_then_served_elsewhere(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    one, two, proxy = _pair(
        start_server, tmp_path, "first", LLAMAPORT_NUM_PARALLEL="1", LLAMAPORT_MAX_QUEUE="1"
    )
    stop = threading.Event()
    holders = [threading.Thread(target=_hold, args=(one.url, stop)) for _ in range(2)]
    try:
        # one holder on the slot, then one in the queue, each seen in node one's
        # gauges: a probe sent before both were in place could take the queue place
        # itself and wait out a 1500-token reply
        holders[0].start()
        one.wait_gauge("llamaport_busy_slots{", 1, "the first holder never reached the engine")
        holders[1].start()
        one.wait_gauge("llamaport_queue_depth", 1, "the second holder never queued")
        with one.client() as direct:
            assert _chat(direct, model=MODEL).status_code == 503
        refused = _refusals(one)
        with proxy.client() as client:
            assert _chat(client).status_code == 200
        assert hits(two, "/api/chat") == 1
        assert _refusals(one) - refused >= 2, "the proxy retried the 503 before failing over"
    finally:
        stop.set()
        for holder in holders:
            holder.join(timeout=120)


@pytest.fixture
def llama_cpp_server(tmp_path: Path) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on the embedded GGUF."""
    gguf = embedded_gguf_path()
    assert gguf is not None
    port = free_port()
    log = (tmp_path / "llama-cpp-server.log").open("wb")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    command += ["--model_alias", "smol"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "llama_cpp.server did not start"
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


def test_llama_cpp_server_upstream_streams_the_same_reply(
    start_server: Callable[..., Server], tmp_path: Path, llama_cpp_server: str
) -> None:
    config = upstream("lcs", "openai", llama_cpp_server, models=["smol"])
    proxy = start_proxy(start_server, tmp_path / "proxy", config)

    def stream(base: str) -> str:
        sdk = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        parts = sdk.chat.completions.create(
            model="smol",
            messages=ASK,
            stream=True,
            temperature=0,
            seed=5,
            max_tokens=16,  # type: ignore[arg-type]
        )
        return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)

    # llama_cpp.server re-evaluates only the last token of a prompt it has just seen,
    # which can change its greedy choice, so both compared calls follow one warm-up.
    stream(llama_cpp_server)
    assert stream(proxy.url) == stream(llama_cpp_server) != ""
    body = {
        "model": "smol",
        "messages": ASK,
        "options": {"temperature": 0, "seed": 5, "num_predict": 16},
    }
    with proxy.client() as client, client.stream("POST", "/api/chat", json=body) as resp:
        native = "".join(json.loads(x)["message"]["content"] for x in resp.iter_lines() if x)
    assert native == stream(llama_cpp_server)
