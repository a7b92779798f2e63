"""Client JSON is checked where it enters: lone surrogates and deep nesting are 400s.

A lone surrogate (``"\\ud800"``) once reached the engine's tokenizer and ended
the engine process, taking every stream on the model with it; nesting about
1,000 deep was a ``RecursionError`` (a 500) on every JSON route.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llamaport.compat.body import MAX_DEPTH
from tests.conftest import MODEL, Server

LONE = '"\\ud800"'
"""A JSON string holding one unpaired UTF-16 surrogate (the escape, not the bytes)."""

SURROGATE_CASES = [
    ("POST", "/api/embed", f'{{"model":"{MODEL}","input":{LONE}}}', "input", False),
    ("POST", "/api/embed", f'{{"model":"{MODEL}","input":["ok",{LONE}]}}', "input[1]", False),
    ("POST", "/api/embeddings", f'{{"model":"{MODEL}","prompt":{LONE}}}', "prompt", False),
    ("POST", "/v1/embeddings", f'{{"model":"{MODEL}","input":{LONE}}}', "input", True),
    ("POST", "/api/tokenize", f'{{"model":"{MODEL}","prompt":{LONE}}}', "prompt", False),
    ("POST", "/api/generate", f'{{"model":"{MODEL}","prompt":{LONE}}}', "prompt", False),
    (
        "POST",
        "/api/chat",
        f'{{"model":"{MODEL}","messages":[{{"role":"user","content":{LONE}}}]}}',
        "messages[0].content",
        False,
    ),
    ("POST", "/v1/completions", f'{{"model":"{MODEL}","prompt":{LONE}}}', "prompt", True),
    (
        "POST",
        "/v1/chat/completions",
        f'{{"model":"{MODEL}","messages":[{{"role":"user","content":{LONE}}}]}}',
        "messages[0].content",
        True,
    ),
    ("DELETE", "/api/delete", f'{{"model":{LONE}}}', "model", False),
    ("POST", "/api/copy", f'{{"source":{LONE},"destination":"x"}}', "source", False),
    ("POST", "/api/show", f'{{"model":"{MODEL}",{LONE}:1}}', "", False),
]


def _long_stream(client: httpx.Client) -> httpx.Response:
    """A generation that keeps going while the bad requests are sent."""
    body = {"model": MODEL, "prompt": "Count from one to one hundred.", "stream": True}
    body["options"] = {"num_predict": 64, "temperature": 0}
    request = client.build_request("POST", "/api/generate", json=body)
    return client.send(request, stream=True)


def test_lone_surrogates_are_400s_and_the_engine_keeps_streaming(server: Server) -> None:
    with server.client() as client:
        stream = _long_stream(client)
        try:
            lines = stream.iter_lines()
            first = json.loads(next(lines))
            assert "error" not in first and first["done"] is False
            pids = server.engine_pids()
            for method, path, body, field, openai in SURROGATE_CASES:
                r = client.request(
                    method, path, content=body, headers={"Content-Type": "application/json"}
                )
                assert r.status_code == 400, (path, r.text)
                error = r.json()["error"]
                message = error["message"] if openai else error
                assert "surrogate" in message, (path, message)
                if openai:
                    assert error["param"] == (field or None)
                elif field:
                    assert f"'{field}'" in message
            rest = [json.loads(line) for line in lines]
        finally:
            stream.close()
        assert rest and all("error" not in c for c in rest)
        assert rest[-1]["done"] is True and rest[-1]["eval_count"] >= 1
        assert server.engine_pids() == pids


def _nested(depth: int) -> bytes:
    return b'{"model":"x","a":' + b"[" * depth + b"]" * depth + b"}"


def _json_operations(client: httpx.Client) -> list[tuple[str, str]]:
    """Every operation of the app that takes a body, from its own OpenAPI document
    (path parameters filled with placeholders); blob uploads take raw bytes."""
    paths: dict[str, dict[str, Any]] = client.get("/openapi.json").json()["paths"]
    ops = []
    for template, methods in paths.items():
        path = template.replace("{digest}", "sha256:" + "0" * 64)
        path = path.replace("{", "").replace("}", "")
        for method in methods:
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE") and "blobs" not in path:
                ops.append((method.upper(), path))
    return ops


def test_deep_nesting_is_a_400_on_every_json_route(server: Server) -> None:
    with server.client() as client:
        ops = _json_operations(client)
        parsing = []
        for method, path in ops:
            broken = client.request(method, path, content=b"{")
            assert broken.status_code < 500, (method, path, broken.text)
            if broken.status_code != 400:
                continue  # this operation reads no body (a DELETE by id)
            parsing.append(path)
            for depth in (MAX_DEPTH + 1, 1_000, 100_000):
                r = client.request(method, path, content=_nested(depth))
                assert r.status_code == 400, (method, path, depth, r.text)
                assert "nested too deeply" in r.text
        shallow = client.post("/api/show", content=_nested(MAX_DEPTH - 2))
    assert len(parsing) >= 15, parsing  # all 19 of today
    assert shallow.status_code == 404  # the depth limit itself lets this through


@pytest.mark.parametrize(
    "kind", [{"a": 1}, ["message"], 7, None], ids=["object", "list", "number", "null"]
)
def test_an_item_type_that_is_not_a_string_is_a_400(server: Server, kind: Any) -> None:
    item = {"type": kind, "role": "user", "content": "hi"}
    with server.client() as client:
        conversation = client.post("/v1/conversations", json={}).json()["id"]
        for path, body in (
            ("/v1/conversations", {"items": [item]}),
            (f"/v1/conversations/{conversation}/items", {"items": [item]}),
            ("/v1/responses", {"model": MODEL, "input": [item]}),
        ):
            r = client.post(path, json=body)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"]["param"].endswith("[0].type")
