"""The examples create, copy, push, pull and delete models and keep
conversations: they run against a server of their own, so the rest of the
suite's shared server never sees what they leave behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server, serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("examples-home"))
