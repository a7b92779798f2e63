"""GeneratedReply: chunks of one generation folded into what it produced."""

from __future__ import annotations

from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, Metrics, TokenLogprob, ToolCall

CALL = ToolCall("c1", "weather", {"city": "Oslo"})


def _chunks() -> list[Chunk]:
    entry = TokenLogprob("He", -0.1, b"He")
    return [
        Chunk(text="He", thinking="hm", logprobs=[entry], warnings=["clamped"]),
        Chunk(text="llo", tool_calls=[CALL]),
        Chunk(
            done=True,
            done_reason="stop",
            metrics=Metrics(eval_count=3),
            context=[1, 2],
            truncated_messages=2,
        ),
    ]


def test_a_finished_reply_holds_everything_in_order() -> None:
    reply = GeneratedReply.of(_chunks())
    assert (reply.text, reply.thinking, reply.tool_calls) == ("Hello", "hm", [CALL])
    assert reply.status == "completed"
    assert [e.token for e in reply.logprobs] == ["He"]


def test_as_chunk_is_one_final_chunk_with_the_last_chunks_metrics() -> None:
    merged = GeneratedReply.of(_chunks()).as_chunk()
    assert merged.done and merged.done_reason == "stop"
    assert (merged.text, merged.thinking, merged.tool_calls) == ("Hello", "hm", [CALL])
    assert merged.metrics == Metrics(eval_count=3)
    assert (merged.context, merged.truncated_messages, merged.warnings) == ([1, 2], 2, ["clamped"])


def test_a_reply_cut_off_or_out_of_tokens_is_incomplete() -> None:
    assert GeneratedReply.of(_chunks()[:2]).status == "incomplete"
    cut = Chunk(done=True, done_reason="length")
    assert GeneratedReply.of([Chunk(text="x"), cut]).status == "incomplete"
