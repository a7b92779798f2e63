"""Progress events of creates, pulls and pushes, shaped like Ollama's ``ProgressResponse``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llamaport.storage.layout import digest_hex

__all__ = ["Progress", "short_digest"]


def short_digest(digest: str) -> str:
    """The 12 hex digits Ollama shows (``pulling dde5aa3fc5ff``)."""
    return digest_hex(digest)[:12]


@dataclass(frozen=True)
class Progress:
    """One status line; zero and empty fields are left out, as Go's ``omitempty``."""

    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.digest:
            out["digest"] = self.digest
        if self.total:
            out["total"] = self.total
        if self.completed:
            out["completed"] = self.completed
        return out
