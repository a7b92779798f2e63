"""``GET /metrics``: Prometheus' text format, counters that move with requests."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MODEL, UNENDING, Samples, Server, metric_samples

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
        body = {
            "model": MODEL,
            "prompt": "Hi",
            "stream": True,
            "format": "json",  # constrained decoding cannot end before "{"
            "options": {"num_predict": 4},
        }
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
    line = server.access("POST", "/api/generate")[-1]
    assert 0 < line["tokens_out"] <= 4 and line["code"] == 200, line


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


def test_every_request_gets_one_structured_access_line(server: Server) -> None:
    """One JSON line per request, written before the client sees the reply's end;
    uvicorn's own access line is gone (a generation used to log two)."""
    asked = (("GET", "/api/tags"), ("POST", "/api/generate"), ("POST", "/api/embed"))
    seen = {path: len(server.access(method, path)) for method, path in asked}
    with server.client() as c:
        assert c.get("/api/tags").status_code == 200
        missing = c.post("/api/generate", json={"model": "no-such-model", "prompt": "Hi"})
        assert missing.status_code == 404
        # JSON mode: constrained decoding cannot end before "{", so a first token is certain
        body = {"model": MODEL, "prompt": "Hi", "format": "json", "options": {"num_predict": 3}}
        with c.stream("POST", "/api/generate", json=body) as r:
            assert [line for line in r.iter_lines() if line]
        embedded = c.post("/api/embed", json={"model": MODEL, "input": ["a", "b"]})
        assert embedded.status_code == 200
    (tags,) = server.access("GET", "/api/tags")[seen["/api/tags"] :]
    assert tags["code"] == 200 and tags["status"] == "ok" and "model" not in tags, tags
    assert tags["client"].startswith("127.0.0.1:") and tags["seconds"] >= 0
    refused, generated = server.access("POST", "/api/generate")[seen["/api/generate"] :]
    assert refused["code"] == 404 and refused["status"] == "error", refused
    assert generated["code"] == 200 and generated["status"] == "ok", generated
    assert generated["model"] == MODEL and 0 < generated["tokens_out"] <= 3
    assert generated["ttft"] > 0 and generated["tokens_in"] >= generated["tokens_cached"] >= 0
    (embed,) = server.access("POST", "/api/embed")[seen["/api/embed"] :]
    assert embed["model"] == MODEL and embed["tokens_in"] == embedded.json()["prompt_eval_count"]
    assert 'HTTP/1.1"' not in server.log.read_text()


def test_the_choices_of_one_request_share_its_line(server: Server) -> None:
    seen = len(server.access("POST", "/v1/chat/completions"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    with server.client() as c:
        r = c.post("/v1/chat/completions", json={**body, "n": 2, "temperature": 1, "seed": 7})
    assert r.status_code == 200, r.text
    (line,) = server.access("POST", "/v1/chat/completions")[seen:]
    assert line["tokens_out"] == r.json()["usage"]["completion_tokens"], line
    assert line["status"] == "ok" and line["model"] == MODEL


def test_a_client_that_leaves_is_logged_as_canceled(server: Server) -> None:
    seen = len(server.access("POST", "/api/chat"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell a story."}]}
    body["format"] = UNENDING  # constrained decoding cannot end it before the client leaves
    with server.client() as c, c.stream("POST", "/api/chat", json=body) as r:
        assert next(line for line in r.iter_lines() if line)  # then hang up mid-stream
    deadline = time.monotonic() + 30
    while not (lines := server.access("POST", "/api/chat")[seen:]):
        assert time.monotonic() < deadline, "no access line for the abandoned stream"
        time.sleep(0.05)
    (line,) = lines
    assert line["status"] == "canceled" and line["code"] == 200, line
