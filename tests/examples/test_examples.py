"""Every example runs against the test server, as a user would run it.

curl.sh and the Postman collection must also cover every route the app
serves: a new route fails these tests until it is added to both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamaport.compat.app import create_app
from tests.compat._registry import DockerRegistry
from tests.conftest import MODEL, Server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 300


@cache
def _served_routes() -> frozenset[tuple[str, str]]:
    """(method, path) of every route, with ``{param}`` as a wildcard, HEAD folded into GET."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GET+HEAD routes share an operation id
        paths = create_app().openapi()["paths"]
    return frozenset(
        (method.upper(), re.sub(r"\{[^}]+\}", "*", path))
        for path, methods in paths.items()
        for method in methods
        if method != "head" or "get" not in methods
    )


def _covers(method: str, path: str) -> tuple[str, str]:
    """The served route a concrete request hits."""
    for served_method, pattern in _served_routes():
        regex = re.escape(pattern).replace(r"\*", "[^/]+")
        if served_method == method and re.fullmatch(regex, path):
            return served_method, pattern
    raise AssertionError(f"{method} {path} is not a served route")


def _run(server: Server, *args: str, **extra: str) -> str:
    env = {**os.environ, "LLAMAPORT_URL": server.url, "LLAMAPORT_MODEL": MODEL, **extra}
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=EXAMPLES.parent
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_curl_calls_every_route(server: Server, docker_registry: DockerRegistry) -> None:
    out = _run(server, "bash", str(EXAMPLES / "curl.sh"), LLAMAPORT_REGISTRY=docker_registry.host)
    called = re.findall(r"^### (\w+) (\S+)$", out, re.MULTILINE)
    assert {_covers(m, p.split("?")[0]) for m, p in called} == _served_routes()


def _requests(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out += _requests(item["item"]) if "item" in item else [item]
    return out


_CAPTURE = re.compile(
    r'pm\.collectionVariables\.set\("(\w+)", pm\.response\.json\(\)\.([\w.\[\]]+)\);'
)
"""The one kind of Postman test script the collection uses: keep a field of the answer."""


def _captures(item: dict[str, Any], answer: Any) -> dict[str, str]:
    """Run the item's capture scripts the way Postman would, on ``answer``."""
    found: dict[str, str] = {}
    for event in item.get("event", []):
        for line in event["script"]["exec"]:
            match = _CAPTURE.fullmatch(line)
            assert match, f"the test runner only knows capture scripts: {line}"
            value = answer
            for key in re.findall(r"\w+", match.group(2)):
                value = value[int(key)] if key.isdigit() else value[key]
            found[match.group(1)] = str(value)
    return found


def test_postman_collection_requests_all_succeed(
    server: Server, docker_registry: DockerRegistry
) -> None:
    collection = json.loads((EXAMPLES / "llamaport.postman_collection.json").read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert "baseUrl" in variables
    variables.update(baseUrl=server.url, registry=docker_registry.host)

    def fill(text: str) -> str:
        return re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], text)

    hit = set()
    with httpx.Client(timeout=TIMEOUT) as client:
        for item in _requests(collection["item"]):
            request = item["request"]
            url = fill(request["url"]["raw"])
            body = request.get("body", {}).get("raw")
            response = client.request(
                request["method"],
                url,
                content=fill(body) if body else None,
                headers={h["key"]: h["value"] for h in request["header"]},
            )
            assert response.is_success, (url, response.text[:500])
            if "event" in item:
                variables.update(_captures(item, response.json()))
            hit.add(_covers(request["method"], httpx.URL(url).path))
    assert hit == _served_routes()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "openai_sdk.py",
            ["chat:", "stream:", "tool call: get_weather", "structured:", "embeddings: 2"],
        ),
        (
            "langchain_chat.py",
            ["invoke:", "stream:", "tool call: get_weather", "structured: name="],
        ),
        ("langchain_rag.py", ["retrieved: [", "answer:"]),
        ("llamaindex_rag.py", ["retrieved: [", "answer:"]),
    ],
)
def test_python_example_runs(server: Server, script: str, expected: list[str]) -> None:
    out = _run(server, sys.executable, str(EXAMPLES / script))
    for marker in expected:
        assert marker in out, out
