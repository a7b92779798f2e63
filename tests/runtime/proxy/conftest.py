"""Real upstreams on loopback for the proxy tests, and a proxy in front of them.

``node_a`` is a second ``llamaport serve`` reached as kind ``ollama``,
``node_b`` a third reached as kind ``openai``; ``proxied`` writes a config
naming them and starts the proxy, another ``llamaport serve``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL, Server, free_port, serving

DEAD = f"http://127.0.0.1:{free_port()}"
"""A loopback port nothing listens on (taken and released, as free_port does)."""


ONLY_B = "only-b:latest"
"""A copy of the embedded model that only node-b holds."""


def upstream(name: str, kind: str, url: str, **extra: object) -> str:
    lines = [f'name = "{name}"', f'kind = "{kind}"', f'url = "{url}"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
    return "[[upstream]]\n" + "\n".join(lines) + "\n"


def route(
    model: str, chain: list[str], balance: str = "least_outstanding", upstream_model: str = MODEL
) -> str:
    upstreams = ", ".join(f'"{n}"' for n in chain)
    return (
        f'[[route]]\nmodel = "{model}"\nupstreams = [{upstreams}]\n'
        f'upstream_model = "{upstream_model}"\nbalance = "{balance}"\n'
    )


def start_proxy(start: Callable[..., Server], home: Path, config: str, **env: str) -> Server:
    """A server at ``home`` with ``config`` as its proxy configuration and ``env``
    added to its environment."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config)
    return start(home, **env)


def hits(server: Server, path: str) -> int:
    """How many requests for ``path`` the server logged (its access log)."""
    return len(server.access("POST", path))


@pytest.fixture(scope="module")
def node_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("node-a"))


@pytest.fixture(scope="module")
def node_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("node-b"))


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, node_a: Server, node_b: Server
) -> Iterator[Server]:
    """Routes: ``remote-a`` (node-a, ollama kind), ``remote-b`` (node-b, openai kind),
    ``failover`` (a dead link first, then node-a), ``nowhere`` (only the dead link),
    and over node-a then node-b: ``only-b`` (:data:`ONLY_B`, which a test copies onto
    node-b alone) and ``on-neither`` (a model neither has)."""
    config = (
        upstream("node-a", "ollama", node_a.url)
        + upstream("node-b", "openai", node_b.url, api_key_env="NODE_B_KEY")
        + upstream("dead", "ollama", DEAD)
        + route("remote-a", ["node-a"])
        + route("remote-b", ["node-b"])
        + route("failover", ["dead", "node-a"], "first")
        + route("nowhere", ["dead"])
        + route("only-b", ["node-a", "node-b"], "first", ONLY_B)
        + route("on-neither", ["node-a", "node-b"], "first", "absent:latest")
    )
    home = tmp_path_factory.mktemp("proxy")
    (home / "config.toml").write_text(config)
    yield from serving(home, NODE_B_KEY="sk-secret-never-shown")


@pytest.fixture
def proxy_client(proxy: Server) -> Iterator[httpx.Client]:
    with proxy.client() as client:
        yield client
