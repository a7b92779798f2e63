"""The routing choice: a pure function of the request's route and the upstreams' states.

No sockets and no clocks, so tests and ``benchmarks/route_sim.py`` drive it
directly. Affinity is a pre-call filter over the healthy links (LiteLLM's
``deployment_affinity_check``), applied before the balancing order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llamaport.runtime.proxy.config import Balance

__all__ = ["Link", "choose"]


@dataclass(frozen=True)
class Link:
    """One upstream of a chain as the choice sees it."""

    name: str
    available: bool
    """Its breaker is closed."""
    outstanding: int = 0
    capacity: int | None = None
    """``max_concurrency``; None means unbounded."""

    @property
    def load(self) -> float:
        return self.outstanding / self.capacity if self.capacity else float(self.outstanding)


def _affine(links: list[Link], pinned: str | None) -> list[Link]:
    """The pinned link first, when it is healthy; else the links unchanged."""
    hit = [link for link in links if link.name == pinned]
    return hit + [link for link in links if link.name != pinned] if hit else links


def choose(balance: Balance, chain: Sequence[Link], pinned: str | None = None) -> list[str]:
    """The order in which to try the chain's healthy links; empty when none is.

    ``first`` keeps the configured order; ``least_outstanding`` orders by load
    (ties keep the configured order); ``conversation_affinity`` puts ``pinned``
    (the link that served the conversation's last turn) first while it is
    healthy, then the others by load.
    """
    healthy = [link for link in chain if link.available]
    if balance == "first":
        return [link.name for link in healthy]
    by_load = sorted(healthy, key=lambda link: link.load)
    if balance == "conversation_affinity":
        by_load = _affine(by_load, pinned)
    return [link.name for link in by_load]
