"""Helpers shared by the native-route tests (framing checks, small request wrappers)."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import MODEL

GREEDY = {"temperature": 0, "seed": 42, "num_predict": 16}
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
HEX64 = re.compile(r"[0-9a-f]{64}")
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
NDJSON = "application/x-ndjson"

Json = dict[str, Any]


# -- helpers ----------------------------------------------------------------


def media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def ndjson(response: httpx.Response) -> list[Json]:
    """Decode an NDJSON body strictly: one object per ``\\n``-terminated line, no blanks."""
    assert response.status_code == 200, response.text
    assert media_type(response) == NDJSON
    raw = response.content
    assert raw.endswith(b"\n"), raw[-200:]
    lines = raw[:-1].split(b"\n")
    assert all(line.strip() for line in lines), f"blank line in stream: {raw!r}"
    chunks = [json.loads(line) for line in lines]
    assert all(isinstance(chunk, dict) for chunk in chunks)
    return chunks


def single_json(response: httpx.Response) -> Json:
    """A ``stream: false`` answer: ``application/json`` holding exactly one object."""
    assert response.status_code == 200, response.text
    assert media_type(response) == "application/json"
    body = response.json()  # raises on a second object or NDJSON
    assert isinstance(body, dict)
    return body


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_final_metrics(final: Json) -> None:
    for key in METRICS:
        assert is_int(final.get(key)), (key, final)
        assert final[key] >= 0, (key, final)
    assert final["prompt_eval_count"] > 0
    assert final["total_duration"] >= final["load_duration"]
    assert final["total_duration"] >= final["eval_duration"]


def check_stream(chunks: list[Json], model: str) -> Json:
    """Invariants of every native stream; returns the final chunk."""
    assert chunks, "empty stream"
    for chunk in chunks[:-1]:
        assert chunk["done"] is False, chunk
        assert "done_reason" not in chunk, chunk
    final = chunks[-1]
    assert final["done"] is True
    assert final["done_reason"] in ("stop", "length")
    for chunk in chunks:
        assert chunk["model"] == model
        assert RFC3339_UTC.fullmatch(chunk["created_at"]), chunk["created_at"]
    check_final_metrics(final)
    return final


def generate(client: httpx.Client, prompt: str, **extra: Any) -> httpx.Response:
    body: Json = {"model": MODEL, "prompt": prompt, "options": dict(GREEDY)}
    body.update(extra)
    return client.post("/api/generate", json=body)


def chat(client: httpx.Client, messages: list[Json], **extra: Any) -> httpx.Response:
    body: Json = {"model": MODEL, "messages": messages, "options": dict(GREEDY)}
    body.update(extra)
    return client.post("/api/chat", json=body)


def text_of(chunks: list[Json]) -> str:
    if "message" in chunks[0]:
        return "".join(c["message"]["content"] for c in chunks)
    return "".join(c["response"] for c in chunks)


def running(client: httpx.Client) -> list[Json]:
    response = client.get("/api/ps")
    assert response.status_code == 200
    models: list[Json] = response.json()["models"]
    return models


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def l2(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def embed(client: httpx.Client, inputs: Any, **extra: Any) -> Json:
    return single_json(client.post("/api/embed", json={"model": MODEL, "input": inputs, **extra}))


def assert_alive(client: httpx.Client) -> None:
    """The server process still answers after a refused request."""
    assert client.head("/").status_code == 200
