"""The one history policy: which messages of a chat stay in a prompt that must fit.

:func:`fit_history` keeps every system message and the newest turns that fit
a token budget, and says how many messages it left out. A tool call and the
results that answer it are one unit: either all of them stay or none does.
The last unit (the turn being answered) always stays; if even that does not
fit, the caller's backend refuses the prompt as too long.

The policy knows no engine: it takes a token counter, an async callable from
candidate messages to the length of the prompt they render to, so the local
service (its engine's tokenizer) and a remote backend (its own count) use the
same rule. Counting a candidate costs about its length; the search counts the
newest 1, 2, 4, ... units, then bisects, so it costs about two prompts' worth.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llamaport.runtime.types import Message

__all__ = ["FittedHistory", "TokenCounter", "fit_history"]

TokenCounter = Callable[[list[Message]], Awaitable[int]]
"""Tokens of the prompt that the given messages render to."""


@dataclass(frozen=True)
class FittedHistory:
    messages: list[Message]
    left_out: int
    """How many messages were left out (never a system message)."""


def _unit_starts(messages: list[Message]) -> list[int]:
    """Where each droppable unit begins: a non-system message, with the tool
    results after it. A result that answers a call of an earlier unit joins
    every unit from that one on into one."""
    starts: list[int] = []
    owner: dict[str, int] = {}  # call id -> the unit (index into starts) that made it
    for i, m in enumerate(messages):
        if m.role == "system":
            continue
        if m.role == "tool" and starts:
            unit = owner.get(m.tool_call_id or "", len(starts) - 1)
            del starts[unit + 1 :]
            owner = {call: min(u, unit) for call, u in owner.items()}
            continue
        owner.update({c.id: len(starts) for c in m.tool_calls if c.id})
        starts.append(i)
    return starts


def _kept(messages: list[Message], cut: int) -> list[Message]:
    """Every system message before ``cut``, then everything from ``cut`` on."""
    return [m for m in messages[:cut] if m.role == "system"] + messages[cut:]


async def fit_history(
    messages: list[Message], count_tokens: TokenCounter, budget: int
) -> FittedHistory:
    """The most of ``messages``' newest units whose prompt has fewer than ``budget`` tokens.

    Messages keep their order. With one unit or none there is nothing to leave out.
    """
    starts = _unit_starts(messages)
    if len(starts) < 2:
        return FittedHistory(messages, 0)

    async def fits(units: int) -> bool:
        return await count_tokens(_kept(messages, starts[-units])) < budget

    fitting, too_many = 1, len(starts) + 1  # the last unit stays even when it alone is too long
    units = 1
    while units < too_many:
        if not await fits(units):
            too_many = units
            break
        fitting = units
        if units == len(starts):
            break
        units = min(units * 2, len(starts))
    while too_many - fitting > 1:
        middle = (fitting + too_many) // 2
        if await fits(middle):
            fitting = middle
        else:
            too_many = middle
    cut = starts[-fitting]
    left_out = sum(1 for m in messages[:cut] if m.role != "system")
    return FittedHistory(_kept(messages, cut), left_out)
