"""A real ``llamaport serve`` and the ends of its streams: a client that leaves
mid-stream frees its sequence; SIGTERM lets short requests finish, ends long
streams with an in-band error after the grace period, and exits 0; a second
signal exits at once."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MODEL, Server

GRACE = 6


def _stream(stack: ExitStack, srv: Server, path: str, body: dict[str, Any]) -> Iterator[str]:
    """A streamed request whose first line has arrived (it is running)."""
    client = stack.enter_context(srv.client())
    response = stack.enter_context(client.stream("POST", path, json=body))
    lines = response.iter_lines()
    first = next(lines)
    assert "error" not in first, first
    return lines


ENDLESS = {"type": "array", "items": {"type": "integer"}, "minItems": 100_000}
"""Constrained decoding cannot close this array for a long while, so the tiny
model cannot end the stream on its own before the grace period does."""


def _long(num_predict: int = -1) -> dict[str, Any]:
    """No limit by default: under one, the smallest such array (200,001 tokens) would
    not fit and the request would be a 400 (docs/compatibility.md, closing)."""
    options = {"num_predict": num_predict, "temperature": 0}
    return {"model": MODEL, "prompt": "Numbers:", "format": ENDLESS, "options": options}


def _long_chat() -> dict[str, Any]:
    body = _long()
    prompt = body.pop("prompt")
    return {**body, "messages": [{"role": "user", "content": prompt}]}


def _until(lines: Iterator[str], deadline: float) -> list[str]:
    """The rest of a stream, which must end by ``deadline``."""
    rest = []
    for line in lines:
        assert time.monotonic() < deadline, "the stream outlived the grace period"
        rest.append(line)
    return rest


def _wait_for_log(srv: Server, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in srv.log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in the server log"
        time.sleep(0.05)


def test_a_client_that_leaves_mid_stream_frees_its_sequence(
    start_server: Callable[..., Server],
) -> None:
    """The stream is sent from the request's own task (``compat.streaming._Stream``):
    the watcher that covered the first chunk must still cancel it when the client
    hangs up, or the endless generation below would hold its slot for good."""
    srv = start_server()
    for path, body in (("/api/generate", _long()), ("/api/chat", _long_chat())):
        with ExitStack() as stack:
            lines = _stream(stack, srv, path, body)
            next(lines)
            srv.wait_gauge("llamaport_busy_slots{", 1, "the request never reached the engine")
        deadline = time.monotonic() + 30
        while srv.gauge("llamaport_busy_slots{") > 0:
            assert time.monotonic() < deadline, f"{path}: the sequence outlived its client"
            time.sleep(0.05)
        assert "Exception in ASGI application" not in srv.log.read_text()


def test_sigterm_lets_short_requests_finish_and_ends_long_streams(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server(LLAMAPORT_SHUTDOWN_GRACE=str(GRACE))
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Numbers:"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "numbers", "schema": ENDLESS},
        },
    }
    with ExitStack() as stack:
        native = _stream(stack, srv, "/api/generate", _long())
        openai = _stream(stack, srv, "/v1/chat/completions", {**chat, "stream": True})
        short = _stream(stack, srv, "/api/generate", {**_long(num_predict=3), "format": None})
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        deadline = start + GRACE + 5
        native_rest = [json.loads(line) for line in _until(native, deadline)]
        openai_rest = [line for line in _until(openai, deadline) if line.startswith("data: ")]
        short_rest = [json.loads(line) for line in _until(short, deadline)]
    code = srv.proc.wait(timeout=GRACE + 5)
    assert time.monotonic() - start <= GRACE + 5
    assert code == 0
    assert "shutting down" in native_rest[-1].get("error", ""), native_rest[-3:]
    assert "shutting down" in json.loads(openai_rest[-1][6:]).get("error", {}).get("message", ""), (
        openai_rest[-3:]
    )
    assert short_rest[-1]["done"] is True and "error" not in short_rest[-1], short_rest
    log = srv.log.read_text()
    assert "Application shutdown complete" in log


def test_new_connections_are_refused_while_draining(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_SHUTDOWN_GRACE=str(GRACE))
    with ExitStack() as stack:
        _stream(stack, srv, "/api/generate", _long())
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                httpx.get(f"{srv.url}/api/version", timeout=2)
            except httpx.TransportError:
                refused = True
        assert refused
    assert srv.proc.wait(timeout=GRACE + 5) == 0


def test_a_second_signal_exits_at_once(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_SHUTDOWN_GRACE="60")
    with ExitStack() as stack:
        _stream(stack, srv, "/api/generate", _long())
        srv.proc.send_signal(signal.SIGTERM)
        _wait_for_log(srv, "Shutting down")  # two pending signals would count as one
        srv.proc.send_signal(signal.SIGTERM)
        code = srv.proc.wait(timeout=10)
    assert code == 128 + signal.SIGTERM


def test_sigterm_answers_requests_that_are_not_streamed(
    start_server: Callable[..., Server],
) -> None:
    """Non-streamed requests still running, or still queued for the one slot, when
    the grace period ends get an error answer in their protocol (503), not a
    dropped connection."""
    srv = start_server(LLAMAPORT_SHUTDOWN_GRACE="2", LLAMAPORT_NUM_PARALLEL="1")
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Numbers:"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": ENDLESS}},
    }
    answers: dict[str, httpx.Response] = {}

    def post(key: str, path: str, body: dict[str, Any]) -> None:
        answers[key] = httpx.post(f"{srv.url}{path}", json=body, timeout=60)

    requests = {
        "running": ("/api/generate", {**_long(), "stream": False}),
        "queued": ("/api/generate", {**_long(), "stream": False}),
        "v1": ("/v1/chat/completions", chat),
    }
    threads = [threading.Thread(target=post, args=(k, *v)) for k, v in requests.items()]
    threads[0].start()
    srv.wait_gauge("llamaport_busy_slots{", 1, "the first request never reached the engine")
    for thread in threads[1:]:
        thread.start()
    srv.wait_gauge("llamaport_queue_depth", 2, "the other requests never queued")
    srv.proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=2 + 10)
    assert srv.proc.wait(timeout=10) == 0
    for key in ("running", "queued"):
        native = answers[key]
        assert native.status_code == 503, (key, native.text)
        assert "shutting down" in native.json()["error"], (key, native.text)
    assert answers["v1"].status_code == 503, answers["v1"].text
    assert "shutting down" in answers["v1"].json()["error"]["message"], answers["v1"].text


def test_the_first_load_takes_the_spare_engine(start_server: Callable[..., Server]) -> None:
    """``serve`` starts one engine process before it imports the server; the first
    load sends its spec to that process instead of spawning one."""
    srv = start_server()
    (spare,) = srv.engine_pids()
    body = {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 1}, "stream": False}
    assert httpx.post(f"{srv.url}/api/generate", json=body, timeout=120).status_code == 200
    assert srv.engine_pids() == [spare]


def test_an_unused_spare_engine_ends_with_the_server(start_server: Callable[..., Server]) -> None:
    srv = start_server()
    (spare,) = srv.engine_pids()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    # Reaped by the server before it exited: not an orphan left for init.
    assert not Path(f"/proc/{spare}").exists()
    assert "Traceback" not in srv.log.read_text()


@pytest.mark.parametrize("where", ["file", "file/models"])
def test_serve_refuses_a_model_store_it_cannot_use(tmp_path: Path, where: str) -> None:
    """LLAMAPORT_MODELS on a file (or under one): one ``Error:`` line naming the
    folder and why, exit status 1, never a start-up traceback (with a preload,
    which reads the store before the server imports, too)."""
    (tmp_path / "file").write_text("")
    env = {
        **os.environ,
        "LLAMAPORT_HOME": str(tmp_path / "home"),
        "LLAMAPORT_MODELS": str(tmp_path / where),
        "LLAMAPORT_HOST": "127.0.0.1:1",  # never bound: the refusal comes first
        "LLAMAPORT_PRELOAD": MODEL,
    }
    command = [sys.executable, "-m", "llamaport.compat.cli.main", "serve"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"Error: the model store {tmp_path / where} cannot be used: ")
    assert "Traceback" not in done.stderr


def test_an_idle_connection_stays_open_past_client_pool_expiry(server: Server) -> None:
    """A connection idle longer than httpx keeps one in its pool (5 s) is still
    open, so a client reusing it just before its own expiry never meets the
    server's close ("Server disconnected without sending a response")."""
    host, port = server.host.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/api/version")
        assert conn.getresponse().read()
        assert conn.sock is not None
        closed, _, _ = select.select([conn.sock], [], [], 7.0)  # uvicorn's default: 5 s
        assert not closed, "the server closed the idle connection"
        conn.request("GET", "/api/version")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
