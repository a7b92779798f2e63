"""Client code copied from Ollama's tutorials and examples, run against llamaport.

The loops are the tutorials' own (``examples/python-simplegenerate``,
``examples/python-simplechat`` and the README's ``curl``), changed only in the
model name and URL, plus ``options`` to keep the tiny model's answers short on
CI and, for the chat example, one line that keeps the final chunk so the test
can read its metrics.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from typing import Any

import pytest
import requests

from tests.conftest import MODEL, Server

SHORT = {"num_predict": 24}


def test_simplegenerate_requests_loop(server: Server) -> None:
    """``examples/python-simplegenerate/client.py``: stream, print, keep ``context``."""
    model = MODEL
    printed: list[str] = []

    def generate(prompt: str, context: list[int]) -> list[int]:
        r = requests.post(
            f"{server.url}/api/generate",
            json={
                "model": model,
                "prompt": prompt,
                "context": context,
                "options": SHORT,
            },
            stream=True,
        )
        r.raise_for_status()

        for line in r.iter_lines():
            body = json.loads(line)
            response_part = body.get("response", "")
            # the response streams one token at a time, print that as we receive it
            printed.append(response_part)

            if "error" in body:
                raise Exception(body["error"])

            if body.get("done", False):
                return body["context"]
        raise AssertionError("the stream ended without done")

    first = generate("Why is the sky blue?", [])
    assert first and all(isinstance(t, int) for t in first)
    assert "".join(printed)
    second = generate("Say it again, shorter.", first)
    assert len(second) > len(first)
    assert second[: len(first)] == first, "context carries the earlier conversation"


def test_simplechat_requests_history(server: Server) -> None:
    """``examples/python-simplechat/client.py``: the client keeps the history.

    From the second turn on, the earlier turns are a prefix of the prompt, so
    the server must reuse them from its cache (``prompt_cached_count``, a
    llamaport extension) instead of evaluating the whole history again.
    """
    model = MODEL
    finals: list[dict[str, Any]] = []

    def chat(messages: list[dict[str, Any]]) -> dict[str, Any]:
        r = requests.post(
            f"{server.url}/api/chat",
            json={"model": model, "messages": messages, "stream": True, "options": SHORT},
            stream=True,
        )
        r.raise_for_status()
        output = ""

        for line in r.iter_lines():
            body = json.loads(line)
            if "error" in body:
                raise Exception(body["error"])
            if body.get("done") is False:
                message = body.get("message", "")
                content = message.get("content", "")
                output += content
                # the response streams one token at a time, print that as we receive it

            if body.get("done", False):
                finals.append(body)  # test instrumentation: keep the metrics
                message["content"] = output
                return message
        raise AssertionError("the stream ended without done")

    messages: list[dict[str, Any]] = []
    for user_input in (
        "I am planning a week of hiking and camping near a mountain lake with my two "
        "children and our dog. What should we pack?",
        "And what food should we bring?",
        "Any safety tips?",
    ):
        messages.append({"role": "user", "content": user_input})
        message = chat(messages)
        messages.append(message)
        assert message["role"] == "assistant"

    assert len(finals) == 3
    for before, after in itertools.pairwise(finals):
        assert after["prompt_cached_count"] > 0
        assert after["prompt_eval_count"] > before["prompt_eval_count"]
        # The whole previous prompt is a prefix of this one (allowing for a
        # re-tokenised seam where the assistant's reply starts).
        assert after["prompt_cached_count"] >= before["prompt_eval_count"] - 2, (before, after)
        assert after["prompt_cached_count"] < after["prompt_eval_count"]


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed")
    return path


def test_curl_root(server: Server, curl: str) -> None:
    """README: ``curl http://localhost:11434`` prints ``Ollama is running``."""
    done = subprocess.run(
        [curl, "-sS", server.url], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout == "Ollama is running"


def test_curl_generate(server: Server, curl: str) -> None:
    """docs/api.md: ``curl http://localhost:11434/api/generate -d '{...}'`` streams NDJSON."""
    body = json.dumps({"model": MODEL, "prompt": "Why is the sky blue?", "options": SHORT})
    done = subprocess.run(
        [curl, "-sS", f"{server.url}/api/generate", "-d", body],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    chunks = [json.loads(line) for line in lines]
    assert chunks[-1]["done"] is True
    assert all(not c["done"] for c in chunks[:-1])
    assert "".join(c["response"] for c in chunks)


def test_curl_chat_no_stream(server: Server, curl: str) -> None:
    """docs/api.md: ``"stream": false`` answers one JSON object."""
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "why is the sky blue?"}],
            "stream": False,
            "options": SHORT,
        }
    )
    done = subprocess.run(
        [curl, "-sS", f"{server.url}/api/chat", "-d", body],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["done"] is True
    assert out["message"]["role"] == "assistant"
    assert out["message"]["content"]
