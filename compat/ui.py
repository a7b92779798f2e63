"""The built-in chat page: ``/ui`` serves ``compat/static/`` (plain HTML, CSS, JS).

The page is static and public (it holds no data); everything it shows comes
from the API it calls, so the API key, origin and Host guards apply to those
calls as to any client's. ``GET /`` stays Ollama's liveness answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from llamaport.storage.settings import Settings

__all__ = ["UI_PATH", "announce", "mount_ui"]

UI_PATH = "/ui"
_STATIC = Path(__file__).with_name("static")


def mount_ui(app: FastAPI) -> None:
    """Serve the page at ``/ui/`` (``/ui`` redirects there, so relative URLs resolve)."""
    app.mount(UI_PATH, StaticFiles(directory=_STATIC, html=True), name="ui")


def announce(settings: Settings) -> None:
    """Log the page's address where uvicorn logs its own start-up lines."""
    logging.getLogger("uvicorn.error").info("chat page at %s%s/", settings.host.url, UI_PATH)
