"""Context budgeting for stored history: leave the oldest turns out of the prompt.

A stored conversation can outgrow ``num_ctx``. The runtime already drops the
oldest non-system message and retries when a chat prompt is too long, but
each retry tokenizes the whole prompt again, which for a long history costs
minutes. :func:`generate_fitted` first finds, with a few
:meth:`Service.tokenize` calls, how many of the oldest stored messages to
leave out: it grows the kept tail 1, 2, 4, ... messages from the newest, then
bisects. Counting a tail costs about its own length, so the search costs
about two prompts' worth of tokens. System messages are always kept, the
database is never cut, and the number left out is added to the final
chunk's ``truncated_messages`` (the runtime's own drops, if any, included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from llamaport.runtime.service import Service
from llamaport.runtime.types import Chunk, GenerateRequest, Message

__all__ = ["generate_fitted"]


def _prompt(
    head: list[Message], past: list[Message], new: list[Message], cut: int
) -> list[Message]:
    """``past`` without its first ``cut`` messages, except the system ones among them."""
    kept_system = [m for m in past[:cut] if m.role == "system"]
    return head + kept_system + past[cut:] + new


async def _cut(
    service: Service,
    req: GenerateRequest,
    head: list[Message],
    past: list[Message],
    new: list[Message],
) -> int:
    """How many of ``past``'s first messages to leave out so the prompt fits."""

    async def fits(kept: int) -> bool:
        messages = _prompt(head, past, new, len(past) - kept)
        tokens, num_ctx = await service.tokenize(dataclasses.replace(req, messages=messages))
        return len(tokens) < num_ctx

    fitting, step = 0, 1
    while True:
        kept = min(step, len(past))
        if not await fits(kept):
            break
        if kept == len(past):
            return 0
        fitting, step = kept, step * 2
    too_many = kept
    while too_many - fitting > 1:
        middle = (fitting + too_many) // 2
        if await fits(middle):
            fitting = middle
        else:
            too_many = middle
    return len(past) - fitting


async def generate_fitted(
    service: Service,
    req: GenerateRequest,
    head: list[Message],
    past: list[Message],
    new: list[Message],
) -> AsyncGenerator[Chunk, None]:
    """Generate from ``head + past + new``, leaving out the oldest of ``past`` as needed.

    With ``req.truncate`` off nothing is left out (a prompt too long is the
    runtime's 400).
    """
    local = service.remote_upstream(req.model) is None  # an upstream fits its own context
    cut = await _cut(service, req, head, past, new) if past and req.truncate and local else 0
    left_out = sum(1 for m in past[:cut] if m.role != "system")
    chunks = service.generate(dataclasses.replace(req, messages=_prompt(head, past, new, cut)))
    try:
        async for chunk in chunks:
            if chunk.done:
                chunk.truncated_messages += left_out
            yield chunk
    finally:
        await chunks.aclose()
