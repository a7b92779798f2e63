"""Clients for the ``/v1`` tests: the official OpenAI SDK against the shared server.

``max_retries=0`` so that a status the SDK would retry shows up as a failure
instead of a slow pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import Server


def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=300)


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with sdk(server) as client:
        yield client
