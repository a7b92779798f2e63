"""The history policy: system messages and the newest turns stay, a call stays with its results.

The token counter here is the policy's own interface (any backend passes
one): it counts characters, so budgets are easy to reason about.
"""

from __future__ import annotations

import asyncio

import pytest

from llamaport.runtime.history import FittedHistory, fit_history
from llamaport.runtime.types import Message, ToolCall


def _fit(messages: list[Message], budget: int, calls: list[int] | None = None) -> FittedHistory:
    async def count(candidate: list[Message]) -> int:
        if calls is not None:
            calls.append(len(candidate))
        return sum(len(m.content) + 1 for m in candidate)

    return asyncio.run(fit_history(messages, count, budget))


def _call(call_id: str, name: str = "f") -> Message:
    return Message("assistant", "c", tool_calls=[ToolCall(call_id, name, {})])


def _result(call_id: str) -> Message:
    return Message("tool", "r" * 9, tool_call_id=call_id)


HISTORY = [
    Message("system", "s"),
    Message("user", "u" * 9),
    _call("a"),
    _result("a"),
    Message("user", "u" * 9),
    Message("assistant", "x" * 9),
    Message("user", "u" * 9),
    Message("assistant", "c", tool_calls=[ToolCall("b", "f", {}), ToolCall("c", "g", {})]),
    _result("b"),
    _result("c"),
    Message("user", "u" * 9),
]


def _assert_calls_stay_with_results(messages: list[Message]) -> None:
    calls = {c.id for m in messages for c in m.tool_calls}
    results = {m.tool_call_id for m in messages if m.role == "tool"}
    every = {c.id for m in HISTORY for c in m.tool_calls}
    assert calls == results & every, "a call and its results stay or go together"


@pytest.mark.parametrize("budget", range(1, 100))
def test_a_tool_call_is_never_separated_from_its_result(budget: int) -> None:
    fitted = _fit(HISTORY, budget)
    _assert_calls_stay_with_results(fitted.messages)
    assert fitted.messages[0].role == "system"
    assert fitted.messages[-1] is HISTORY[-1], "the turn being answered always stays"
    assert fitted.left_out == len(HISTORY) - len(fitted.messages)
    kept = [m for m in HISTORY if any(m is k for k in fitted.messages)]
    assert kept == fitted.messages, "messages keep their order"
    assert fitted.messages[1:] == HISTORY[len(HISTORY) - len(fitted.messages) + 1 :], "newest"


def test_everything_stays_when_it_fits() -> None:
    fitted = _fit(HISTORY, 10_000)
    assert fitted == FittedHistory(HISTORY, 0)


def test_the_most_that_fits_stays() -> None:
    total = sum(len(m.content) + 1 for m in HISTORY)
    fitted = _fit(HISTORY, total)  # one short: the oldest user turn (10) goes
    assert fitted.left_out == 1
    assert fitted.messages == [HISTORY[0], *HISTORY[2:]]


def test_results_without_an_id_stay_with_the_call_before_them() -> None:
    history = [
        Message("user", "u" * 9),
        _call("a"),
        Message("tool", "r" * 9),
        Message("user", "u"),
    ]
    fitted = _fit(history, 6)
    assert fitted.messages == [history[-1]] and fitted.left_out == 3
    fitted = _fit(history, 24)
    assert fitted.messages == history[1:]


def test_a_result_that_answers_an_older_call_joins_the_turns_between() -> None:
    history = [_call("a"), Message("user", "wait"), _result("a"), Message("user", "u")]
    for budget in range(1, 30):
        fitted = _fit(history, budget)
        assert fitted.messages in ([history[-1]], history)


def test_a_single_turn_is_never_cut() -> None:
    only = [Message("system", "s"), Message("user", "u" * 50)]
    assert _fit(only, 5) == FittedHistory(only, 0)


def test_system_messages_anywhere_stay() -> None:
    history = [Message("user", "u" * 9), Message("system", "late"), Message("user", "u")]
    fitted = _fit(history, 9)
    assert fitted.messages == history[1:] and fitted.left_out == 1


def test_the_search_counts_few_candidates() -> None:
    long = [Message("user", "u" * 9) for _ in range(1000)]
    calls: list[int] = []
    fitted = _fit(long, 5000, calls)
    assert len(fitted.messages) == 499, "fewer than 5000 characters"
    assert len(calls) <= 2 * 10 + 2, calls
