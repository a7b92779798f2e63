"""Fixtures for the CLI tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.compat.cli._repl import Harness
from tests.conftest import Server


@pytest.fixture
def repl(server: Server) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**opts: Any) -> Harness:
        harness = Harness(server.url, **opts)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
