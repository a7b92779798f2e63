"""``GET /metrics``: Prometheus' text format, counters that move with requests."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MODEL, Samples, Server, metric_samples

DONE = "llamaport_request_duration_seconds_count"


def _after(c: httpx.Client, before: Samples, labels: tuple[tuple[str, str], ...]) -> Samples:
    """Samples once the request is recorded (its stream may end just before)."""
    deadline = time.monotonic() + 10
    while True:
        after = metric_samples(c)
        if after.get((DONE, labels), 0.0) > before.get((DONE, labels), 0.0):
            return after
        assert time.monotonic() < deadline, "the request was never recorded"
        time.sleep(0.05)


def test_counters_move_with_a_request(server: Server) -> None:
    model = (("model", MODEL),)
    done = (("model", MODEL), ("status", "ok"))
    with server.client() as c:
        before = metric_samples(c)
        body = {"model": MODEL, "prompt": "Hi", "stream": True, "options": {"num_predict": 4}}
        with c.stream("POST", "/api/generate", json=body) as r:
            lines = [line for line in r.iter_lines() if line]
        after = _after(c, before, done)
    assert lines
    for name in ("llamaport_prompt_tokens_total", "llamaport_generated_tokens_total"):
        assert after[(name, model)] > before.get((name, model), 0.0), name
    assert after[("llamaport_cached_prompt_tokens_total", model)] >= 0
    assert after[(DONE, done)] == before.get((DONE, done), 0.0) + 1
    ttft = "llamaport_time_to_first_token_seconds_count"
    assert after[(ttft, model)] == before.get((ttft, model), 0.0) + 1
    assert after[("llamaport_loaded_models", ())] >= 1
    assert after[("llamaport_model_size_bytes", model)] > 0
    assert after[("llamaport_queue_depth", ())] == 0
    access = [line for line in server.log.read_text().splitlines() if " access {" in line]
    assert access and '"tokens_out"' in access[-1], access[-3:]


def test_v1_requests_are_counted(server: Server) -> None:
    model = (("model", MODEL),)
    with server.client() as c:
        before = metric_samples(c)
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        after = _after(c, before, (("model", MODEL), ("status", "ok")))
    name = "llamaport_generated_tokens_total"
    assert after[(name, model)] > before.get((name, model), 0.0)


def test_metrics_want_the_api_key(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_API_KEY="sesame")
    with srv.client() as c:
        assert c.get("/metrics").status_code == 401
        r = c.get("/metrics", headers={"Authorization": "Bearer sesame"})
    assert r.status_code == 200
    assert any(f.name == "llamaport_queue_depth" for f in text_string_to_metric_families(r.text))
