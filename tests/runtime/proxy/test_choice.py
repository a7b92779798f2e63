"""The routing choice is a pure function: driven here without sockets."""

from __future__ import annotations

import pytest

from llamaport.runtime.proxy import Link, choose
from llamaport.runtime.proxy.config import Balance

CHAIN = [
    Link("a", True, outstanding=5),
    Link("b", True, outstanding=1),
    Link("down", False, outstanding=0),
    Link("c", True, outstanding=1, capacity=4),
]


@pytest.mark.parametrize(
    ("balance", "pinned", "order"),
    [
        ("first", None, ["a", "b", "c"]),
        ("least_outstanding", None, ["c", "b", "a"]),
        ("conversation_affinity", "a", ["a", "c", "b"]),
        ("conversation_affinity", "down", ["c", "b", "a"]),
        ("conversation_affinity", None, ["c", "b", "a"]),
    ],
    ids=["first-keeps-order", "least-load", "pinned-first", "pinned-down-moves", "no-pin"],
)
def test_choose(balance: Balance, pinned: str | None, order: list[str]) -> None:
    assert choose(balance, CHAIN, pinned) == order


def test_nothing_healthy_is_an_empty_order() -> None:
    assert choose("least_outstanding", [Link("x", False)]) == []
