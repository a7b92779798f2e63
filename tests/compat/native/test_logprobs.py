"""Token log-probabilities on the native routes, streamed and whole.

Under greedy decoding (temperature 0, no penalties, no grammar) the sampled
token is the model's most likely one, so its log-probability is the first
alternative's; the reported token texts join to exactly the content.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import ollama
import pytest

from tests.compat._native import ndjson, single_json
from tests.conftest import MODEL, Server

Json = dict[str, Any]
PROMPT = "Write a short sentence about the sea, with an accent: café."
GREEDY = {"temperature": 0, "num_predict": 24, "repeat_penalty": 1.0}
USER = [{"role": "user", "content": PROMPT}]


def check_entry(entry: Json, top: int) -> None:
    assert set(entry) >= {"token", "logprob", "bytes"}
    assert entry["logprob"] <= 0.0
    assert all(isinstance(b, int) and 0 <= b < 256 for b in entry["bytes"])
    alternatives = entry.get("top_logprobs") or []
    assert len(alternatives) == top
    values = [alt["logprob"] for alt in alternatives]
    assert values == sorted(values, reverse=True)
    assert all(v <= 0.0 for v in values)
    if top:
        assert math.isclose(entry["logprob"], values[0], abs_tol=1e-6)
        assert bytes(entry["bytes"]) == bytes(alternatives[0]["bytes"])


def _native(client: httpx.Client, path: str, stream: bool, top: int) -> tuple[str, list[Json]]:
    body: Json = {"model": MODEL, "options": GREEDY, "stream": stream, "logprobs": True}
    body["top_logprobs"] = top
    if path == "/api/chat":
        body["messages"] = USER
    else:
        body["prompt"] = PROMPT
    response = client.post(path, json=body)
    chunks = ndjson(response) if stream else [single_json(response)]
    key = "response" if path == "/api/generate" else None
    text = "".join(c[key] if key else c["message"]["content"] for c in chunks)
    entries = [e for c in chunks for e in c.get("logprobs", [])]
    return text, entries


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_native_logprobs_cover_the_content(client: httpx.Client, path: str) -> None:
    streamed_text, streamed = _native(client, path, stream=True, top=3)
    whole_text, whole = _native(client, path, stream=False, top=3)
    assert streamed_text == whole_text
    assert "".join(e["token"] for e in whole) == whole_text
    assert len(whole) >= 2
    for entry in whole:
        check_entry(entry, 3)
    assert [(e["token"], e["bytes"]) for e in streamed] == [(e["token"], e["bytes"]) for e in whole]
    assert [e["logprob"] for e in streamed] == pytest.approx([e["logprob"] for e in whole])


def test_native_bytes_join_to_the_utf8_of_the_content(client: httpx.Client) -> None:
    text, entries = _native(client, "/api/generate", stream=False, top=0)
    raw = b"".join(bytes(e["bytes"]) for e in entries)
    assert raw.decode("utf-8", errors="ignore") == text
    assert all("top_logprobs" not in e for e in entries)


def test_native_without_logprobs_sends_none(client: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": PROMPT, "options": GREEDY, "stream": False}
    assert "logprobs" not in single_json(client.post("/api/generate", json=body))


def test_the_ollama_client_reads_logprobs(server: Server) -> None:
    out = ollama.Client(host=server.url).chat(
        model=MODEL, messages=USER, options=GREEDY, logprobs=True, top_logprobs=2
    )
    assert out.logprobs
    assert "".join(e.token for e in out.logprobs) == out.message.content
    for entry in out.logprobs:
        assert entry.logprob <= 0 and entry.top_logprobs and len(entry.top_logprobs) == 2
