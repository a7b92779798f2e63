"""The integration classes under test talk to the session's live server."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL, Server

NO_SERVER = "http://127.0.0.1:9"
"""A closed port: unit tests prove constructors need no server."""


class Live:
    """Where the standard suites' property methods find the server (set per module)."""

    url = NO_SERVER


@pytest.fixture(scope="module")
def live(server: Server) -> Server:
    Live.url = server.url
    return server


__all__ = ["MODEL", "NO_SERVER", "Live"]
