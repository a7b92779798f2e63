"""Version strings reported by the CLI and ``/api/version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["OLLAMA_API_VERSION", "__version__"]

try:
    __version__ = version("llamaport")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

OLLAMA_API_VERSION = "0.33.0"
"""The Ollama release whose API llamaport tracks (see docs/compatibility.md)."""
