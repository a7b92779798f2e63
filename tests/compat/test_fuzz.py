"""Schemathesis against a real ``llamaport serve``: no generated request gets a 5xx or hangs.

Every operation of the served ``/openapi.json`` is fuzzed with bodies from
its schema, valid ones (positive) and schema-breaking ones (negative), at
least :data:`REQUESTS` requests in all. What it proves: no input the schema
lets a client express, nor one that breaks it, reaches a 500, kills the
server, or holds a request past :data:`REQUEST_TIMEOUT`.

Bounded so it fits in ``make test``: the server runs with a 256-token
context, generation lengths the fuzzer draws are clamped to a few tokens
(and ``n`` to 2), and a third of the model-taking requests name the real
model, half of those with a valid prompt, so the engine is exercised rather
than only "model not found" and "invalid role". The timeout is per read: a
stream counts as hung when it goes quiet, and every stream is a few tokens.

Kept off the network and off the embedded model: pull/push names that would
reach a registry are pointed at the test registry on loopback
(``docker_registry``, which holds none of them), and a create, copy
destination or delete that names the embedded model gets a scratch name.
Requests are not shrunk: a failure is reported with its request, as curl.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Ok

from llamaport.storage import InvalidModelName, parse_name
from tests.compat._registry import DockerRegistry
from tests.conftest import MODEL, Server, serving

Operation = APIOperation[Any, Any, Any, Any]
REQUESTS = 2000
REQUEST_TIMEOUT = 60.0
MAX_TOKENS = 4
MAX_CHOICES = 2

GENERATION = {
    "/api/generate",
    "/api/chat",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
}
TAKES_MODEL = GENERATION | {
    "/api/embed",
    "/api/embeddings",
    "/api/tokenize",
    "/api/detokenize",
    "/api/show",
    "/v1/embeddings",
    "/api/copy",
}
"""Routes whose model (for copy: source) the fuzzer may set to the real one."""
REGISTRY = {"/api/pull", "/api/push"}
WRITES_NAME = {
    "/api/create": ("model", "name"),
    "/api/copy": ("destination",),
    "/api/delete": ("model", "name"),
}
"""Fields naming a model that the request writes or removes."""
PROMPTS: dict[str, dict[str, Any]] = {
    "/api/generate": {"prompt": "hi"},
    "/api/chat": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"prompt": "hi"},
    "/v1/responses": {"input": "hi"},
    "/api/embed": {"input": "hi"},
    "/api/embeddings": {"prompt": "hi"},
    "/v1/embeddings": {"input": "hi"},
    "/api/tokenize": {"prompt": "hi"},
}
"""A valid prompt per route, put in place of the drawn one for a third of the requests."""
LENGTHS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""OpenAI's generation limits (chat, completions, responses); unknown ones are ignored."""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(
        tmp_path_factory.mktemp("fuzz-home"),
        LLAMAPORT_CONTEXT_LENGTH="256",
        LLAMAPORT_NUM_PARALLEL="2",
    )


def _cap(value: Any, top: int) -> Any:
    """A drawn limit: kept if a small non-negative int or not a number at all
    (a type error the server must refuse), otherwise ``top``."""
    if isinstance(value, str | list | dict | bool):
        return value
    return value if isinstance(value, int) and 0 <= value <= top else top


def _bound_generation(body: dict[str, Any]) -> None:
    options = body.get("options")
    if options is None:
        body["options"] = {"num_predict": MAX_TOKENS}
    elif isinstance(options, dict):
        options["num_predict"] = _cap(options.get("num_predict"), MAX_TOKENS)
    for key in LENGTHS:
        body[key] = _cap(body.get(key), MAX_TOKENS)
    for key in ("n", "best_of"):
        if key in body:
            body[key] = _cap(body[key], MAX_CHOICES)


def _parses(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_name(value)
    except InvalidModelName:
        return False
    return True


def _is_embedded(value: Any) -> bool:
    return _parses(value) and parse_name(value).equal_fold(parse_name(MODEL))


class Bounds:
    """Rewrites a drawn body in place so the run stays bounded, local and harmless."""

    def __init__(self, registry: str) -> None:
        self.registry = registry

    def apply(self, path: str, body: Any, real: int) -> None:
        """``real``: 0 keeps the drawn model and prompt, 1 names the real model, 2 also
        puts a valid prompt in."""
        if not isinstance(body, dict):
            return
        if path in TAKES_MODEL and real:
            body["source" if path == "/api/copy" else "model"] = MODEL
        if real == 2:
            body.update(PROMPTS.get(path, {}))
        if path in GENERATION:
            _bound_generation(body)
        if path in REGISTRY:
            for key in ("model", "name"):
                if _parses(body.get(key)):  # a name that parses would reach its registry
                    body[key] = f"{self.registry}/fuzz/scratch:latest"
            if body.get("insecure") in (None, False, True):
                body["insecure"] = True  # the test registry speaks plain HTTP
        for key in WRITES_NAME.get(path, ()):
            if _is_embedded(body.get(key)):
                body[key] = "fuzz-scratch"


def _examples(operation: Operation, budget: int) -> int:
    return budget if operation.body else max(10, budget // 5)


def _strategy(operation: Operation) -> st.SearchStrategy[Case[Operation]]:
    modes = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    if operation.body or operation.path_parameters or operation.query:
        modes.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(modes)


def _fuzz(
    operation: Operation, base_url: str, bounds: Bounds, examples: int, seen: Counter[str]
) -> list[str]:
    """Run ``examples`` drawn requests; return one line per 5xx or timeout."""
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation), real=st.sampled_from([0, 0, 0, 0, 1, 2]))
    def run(case: Case[Operation], real: int) -> None:
        bounds.apply(operation.path, case.body, real)
        try:
            response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT)
        except requests.Timeout:
            seen[f"{operation.label} timeout"] += 1
            failures.append(f"no answer in {REQUEST_TIMEOUT}s: {case.as_curl_command()[:600]}")
            return
        seen[f"{operation.label} {response.status_code}"] += 1
        if response.status_code >= 500:
            failures.append(
                f"{response.status_code} {response.text[:200]!r}: {case.as_curl_command()[:600]}"
            )

    run()
    return failures


def test_no_generated_request_gets_a_server_error(
    fuzz_server: Server, docker_registry: DockerRegistry
) -> None:
    raw = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=30).json()
    config = schemathesis.Config.from_dict({"output": {"sanitization": {"enabled": False}}})
    schema = schemathesis.openapi.from_dict(raw, config=config)  # curl lines show real values
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    with_body = sum(1 for op in operations if op.body)
    budget = math.ceil(1.05 * REQUESTS / with_body)
    bounds = Bounds(docker_registry.host)
    seen: Counter[str] = Counter()
    failures: list[str] = []
    for operation in operations:
        failures += _fuzz(operation, fuzz_server.url, bounds, _examples(operation, budget), seen)
    print("requests by operation and status:", dict(seen))
    assert fuzz_server.proc.poll() is None, "the server died"
    assert failures == [], f"{len(failures)} of {sum(seen.values())}:\n" + "\n".join(failures)
    assert sum(seen.values()) >= REQUESTS, seen
    tags = httpx.get(f"{fuzz_server.url}/api/tags", timeout=30).json()
    assert MODEL in [m["name"] for m in tags["models"]]


def test_bounds_keep_the_run_local_and_short() -> None:
    """The rewrites themselves: registry names, the embedded model, lengths."""
    bounds = Bounds("127.0.0.1:9")
    pull: dict[str, Any] = {"model": "library/llama3:8b", "name": "not a name!"}
    bounds.apply("/api/pull", pull, real=0)
    assert pull["model"] == "127.0.0.1:9/fuzz/scratch:latest"
    assert pull["name"] == "not a name!"
    assert pull["insecure"] is True
    delete = {"model": "SmolLM2:135M"}
    bounds.apply("/api/delete", delete, real=0)
    assert delete == {"model": "fuzz-scratch"}
    chat: dict[str, Any] = {"max_tokens": 10**9, "n": 100, "options": {"num_predict": -1}}
    bounds.apply("/v1/chat/completions", chat, real=1)
    assert chat["model"] == MODEL
    assert chat["n"] == MAX_CHOICES
    assert chat["options"]["num_predict"] == MAX_TOKENS
    assert all(chat[key] == MAX_TOKENS for key in LENGTHS)
    typed = {"options": {"num_predict": "many"}}
    bounds.apply("/api/generate", typed, real=0)
    assert typed["options"]["num_predict"] == "many"
