"""Continuous batching over a fixed set of sequence slots.

Each slot is one llama.cpp sequence id with its own KV cells (the context is
created with ``kv_unified=False``, so every slot gets a full ``num_ctx``).
A finished request leaves its tokens resident in its slot, and a new request
evaluates only what its slot does not already hold. The slot is chosen by
weighing what a request reuses against what it destroys: a free slot whose
cells are mostly a prefix of the prompt (it reuses at least as many tokens as
it drops) wins by the longest prefix; otherwise the request takes an empty
slot, else the least recently used one, so a short shared prefix such as a
system header never evicts another conversation while room is left.

Cells about to be overwritten are first saved to the host-memory
:class:`PrefixCache` (when there is one); a prompt that shares more with a
saved sequence than with any resident slot gets it restored into the slot it
takes, so more conversations than slots stay warm. A stored conversation's
turn (``Submit.persist``) also weighs the cache's files on disk, and its slot
is written there when it finishes.

A request with a ``format`` and a token limit always ends with a complete
document: a :class:`Closer` follows its output, and when a drawn token would
leave too few tokens to finish, the tokens of the cheapest completion are fed
instead, one per step through the same decode, detokenize and emit path
(``Done.closed`` says so). A limit below the smallest document is refused
before any decoding.

Every :meth:`Batcher.step` builds one ``llama_decode`` batch
holding one token for each decoding sequence plus chunks of pending prompts,
so long prompts are prefilled in pieces between decode steps and new requests
join as soon as a slot is free.

Only the engine's owner thread may call into this module.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import llama_cpp as L

from llamaport.runtime.engine.closing import Closer, ClosingError, State, closer_for
from llamaport.runtime.engine.detokenizer import Detokenizer, StopMatcher
from llamaport.runtime.engine.grammar import GrammarError, grammar_text
from llamaport.runtime.engine.logprobs import LogprobQueue, logprobs_at
from llamaport.runtime.engine.prefix_cache import PrefixCache
from llamaport.runtime.engine.prefixes import common_prefix
from llamaport.runtime.engine.sampler import Sampler
from llamaport.runtime.engine.wire import (
    Done,
    Event,
    Failed,
    SamplingParams,
    Started,
    Submit,
    Text,
    TokenLogprob,
)

__all__ = ["Batcher", "Model", "invalid_token"]

_MIN_REUSE = 32
"""Saving or restoring fewer cells than this costs more than prefilling them."""

_ABORT_MIN_TOKENS = 32
"""Install the abort callback only for batches this large: ggml calls it per
graph node, so on small decode steps its cost outweighs its use."""


def invalid_token(tokens: Iterable[int], n_vocab: int) -> int | None:
    """The first id outside the vocabulary: llama.cpp would read past its tables."""
    return next((t for t in tokens if not 0 <= t < n_vocab), None)


@dataclass
class Model:
    """The handles and helpers a batcher needs from the loaded model."""

    ctx: object
    vocab: object
    n_ctx: int
    n_batch: int
    n_vocab: int
    tokenize: Callable[[Submit], list[int]]
    piece: Callable[[int], bytes]
    byte_token: Callable[[int], int | None]
    """The token of one byte alone: a character cut between tokens is finished with these."""
    tokenize_text: Callable[[str], list[int]]
    """Plain text (no control tokens) to ids: the closing text's tokens."""


@dataclass
class _Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)
    busy: bool = False
    last_used: float = 0.0


@dataclass
class _Sequence:
    rid: int
    prompt: list[int]
    slot: _Slot
    sampler: Sampler
    detok: Detokenizer
    stopper: StopMatcher
    params: SamplingParams
    return_context: bool
    persist: str
    owner: str
    pending: list[int] = field(default_factory=list)
    prompt_done: bool = False
    cached: int = 0
    generated: list[int] = field(default_factory=list)
    logprobs: LogprobQueue | None = None
    t_start: float = 0.0
    t_prompt_done: float = 0.0
    closing: _Closing | None = None


@dataclass
class _Closing:
    """A sequence's document so far, for :class:`Closer`; ``forced`` holds the
    completion's tokens still to feed once closing began."""

    closer: Closer
    state: State
    limit: int
    forced: deque[int] = field(default_factory=deque)
    closed: bool = False


class Batcher:
    """Admits, prefills, decodes and finishes requests; reports through ``emit``."""

    def __init__(
        self,
        model: Model,
        n_slots: int,
        emit: Callable[[Event], None],
        cache: PrefixCache | None = None,
    ) -> None:
        self._m = model
        self._cache = cache
        self._emit = emit
        self._mem = L.llama_get_memory(model.ctx)
        self._slots = [_Slot(seq_id=i) for i in range(n_slots)]
        self._waiting: deque[tuple[Submit, list[int]]] = deque()
        self._active: list[_Sequence] = []
        self._batch = L.llama_batch_init(model.n_batch, 0, 1)
        self.cancel_requests: set[int] = set()
        """Request ids the receiver thread wants stopped; read by the abort callback."""
        self._batch_rids: set[int] = set()
        self._abort_cb = L.ggml_abort_callback(self._should_abort)

    @property
    def has_work(self) -> bool:
        return bool(self._waiting or self._active)

    def submit(self, cmd: Submit) -> None:
        """Queue ``cmd``; a tokenizer error raises (the caller fails the request)."""
        prompt = self._m.tokenize(cmd)
        bad = invalid_token(prompt, self._m.n_vocab)  # ``context`` ids come from the client
        if bad is not None:
            self._emit(Failed(cmd.rid, "bad_request", f"invalid token id {bad}"))
            return
        if len(prompt) >= self._m.n_ctx or not prompt:
            self._emit(Failed(cmd.rid, "prompt_too_long", "prompt too long", len(prompt)))
            return
        self._waiting.append((cmd, prompt))

    def forget(self, owner: str) -> None:
        """Remove the KV files of ``owner``'s turns (its conversation was deleted)."""
        if self._cache is not None:
            self._cache.forget(owner)

    def cancel(self, rid: int) -> None:
        self.cancel_requests.discard(rid)
        for item in list(self._waiting):
            if item[0].rid == rid:
                self._waiting.remove(item)
                self._emit(Failed(rid, "canceled", "request canceled"))
        for seq in list(self._active):
            if seq.rid == rid:
                self._release(seq)
                self._emit(Failed(rid, "canceled", "request canceled"))

    def fail_all(self, message: str) -> None:
        """Fail every request held, after an error no single request owns.

        Slots and KV cells are reset too: the step that raised may have left
        them half-updated, and nothing cached is trusted after it.
        """
        for cmd, _ in self._waiting:
            self._emit(Failed(cmd.rid, "internal", message))
        self._waiting.clear()
        for seq in list(self._active):
            self._drop(seq, message)
        L.llama_memory_clear(self._mem, True)
        for slot in self._slots:
            slot.busy = False
            slot.tokens.clear()

    def close(self) -> None:
        for seq in list(self._active):
            self._release(seq)
        L.llama_batch_free(self._batch)
        if self._cache is not None:
            self._cache.close()

    # -- admission -----------------------------------------------------------

    def admit(self) -> None:
        """Give waiting requests the free slots; each gets a ``Started`` event."""
        while self._waiting:
            free = [s for s in self._slots if not s.busy]
            if not free:
                return
            cmd, prompt = self._waiting.popleft()
            try:
                sampler = Sampler(cmd.sampling, self._m.vocab, self._m.n_vocab, self._m.n_ctx)
            except GrammarError as exc:
                self._emit(Failed(cmd.rid, "bad_request", str(exc)))
                continue
            except Exception as exc:  # off the queue and not yet active: fail it here
                self._emit(Failed(cmd.rid, "internal", f"sampler: {exc}"))
                continue
            try:
                closing = self._closing(cmd.sampling)
            except ValueError as exc:  # a limit too small for the smallest document
                sampler.close()
                self._emit(Failed(cmd.rid, "bad_request", str(exc)))
                continue
            try:
                slot, keep = self._place(free, prompt, cmd.persist)
            except Exception as exc:  # neither waiting nor active: fail it before the loop resets
                sampler.close()
                self._emit(Failed(cmd.rid, "internal", f"engine error: {exc!r}"))
                raise
            slot.busy = True
            sampler.accept_prompt(prompt[-sampler.window :] if sampler.window else ())
            seq = _Sequence(
                rid=cmd.rid,
                prompt=prompt,
                slot=slot,
                sampler=sampler,
                detok=Detokenizer(self._m.piece),
                stopper=StopMatcher(cmd.sampling.stop),
                params=cmd.sampling,
                return_context=cmd.return_context,
                persist=cmd.persist,
                owner=cmd.owner,
                pending=prompt[keep:],
                cached=keep,
                logprobs=LogprobQueue() if cmd.sampling.logprobs else None,
                t_start=time.perf_counter(),
                closing=closing,
            )
            self._active.append(seq)
            self._emit(Started(cmd.rid, len(prompt), keep))

    def _closing(self, params: SamplingParams) -> _Closing | None:
        """The closer of a ``format`` under a token limit; raises ``ValueError`` when
        the limit cannot hold the smallest document. None without either, or for a
        grammar the closer cannot read (generation then runs unclosed)."""
        limit = params.num_predict
        if not params.format or limit is None or limit <= 0:
            return None
        try:
            closer = closer_for(
                *grammar_text(params.format, params.think_budget, params.think_opened)
            )
        except ClosingError:
            return None
        state = closer.initial()
        smallest = closer.completion(state)
        need = len(self._m.tokenize_text(smallest))
        if need > limit:
            shown = smallest if len(smallest) <= 120 else smallest[:120] + "..."
            raise ValueError(
                f"a token limit of {limit} is too small for the format: its smallest "
                f"reply needs {need} tokens ({shown})"
            )
        return _Closing(closer, state, limit)

    def _place(self, free: list[_Slot], prompt: list[int], persist: str) -> tuple[_Slot, int]:
        """The slot for ``prompt`` and how many of its cells the prompt reuses.

        Cells past the reused prefix are removed (saved to the host cache
        first); the last prompt token is always evaluated again, since its
        logits are needed. ``persist`` (a stored conversation's identity) lets
        the files stored under it compete with the host cache's entries.
        """
        reuse = {s.seq_id: common_prefix(s.tokens, prompt) for s in free}
        worth = [s for s in free if self._worth(reuse[s.seq_id], s, prompt)]
        resident = max(worth, key=lambda s: (reuse[s.seq_id], s.last_used), default=None)
        entry, hit = self._cache.lookup(prompt, persist) if self._cache is not None else (None, 0)
        hit = min(hit, len(prompt) - 1)
        if (
            entry is not None
            and hit >= _MIN_REUSE
            and hit > (reuse[resident.seq_id] if resident else 0)
        ):
            slot = self._victim(free)
            self._truncate(slot, 0)
            if self._cache is not None and self._cache.restore(entry, slot.seq_id):
                slot.tokens = list(entry.tokens)
            else:
                L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        else:
            slot = resident or self._victim(free)
        keep = min(common_prefix(slot.tokens, prompt), len(prompt) - 1)
        return slot, self._truncate(slot, keep)

    def _worth(self, reuse: int, slot: _Slot, prompt: list[int]) -> bool:
        """Whether reusing ``reuse`` cells of ``slot`` beats an empty or least
        recently used slot: when they are at least half of what the slot holds,
        or, with the host cache to keep the cells dropped, when they are nine
        tenths of the prompt (the same prompt again, whose previous reply made
        the slot longer than twice the prompt). A prompt that shares only the
        system header with a resident conversation is neither."""
        if not reuse:
            return False
        return 2 * reuse >= len(slot.tokens) or (
            self._cache is not None and 10 * reuse >= 9 * len(prompt)
        )

    def _victim(self, free: list[_Slot]) -> _Slot:
        """An empty slot, else the least recently used one; next to a busy slot
        first within each, so that the busy slots stay consecutive and decode in
        one ubatch (see :meth:`_fill_batch`: two streams in slots 3 and 5 decoded
        at one stream's rate)."""
        busy = {s.seq_id for s in self._slots if s.busy}

        def lone(slot: _Slot) -> bool:
            return bool(busy) and not {slot.seq_id - 1, slot.seq_id + 1} & busy

        return min(free, key=lambda s: (bool(s.tokens), lone(s), s.last_used))

    def _truncate(self, slot: _Slot, keep: int) -> int:
        """Drop the slot's cells from ``keep`` on, saving them to the host cache
        when that many are worth it; all of them where a partial removal is
        unsupported (recurrent models). Returns the cells kept."""
        if keep >= len(slot.tokens):
            return keep
        if self._cache is not None and len(slot.tokens) - keep >= _MIN_REUSE:
            self._cache.save(slot.seq_id, slot.tokens)
        if not L.llama_memory_seq_rm(self._mem, slot.seq_id, keep, -1):
            L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            keep = 0
        del slot.tokens[keep:]
        return keep

    # -- one decode step -------------------------------------------------------

    def step(self) -> None:
        """Decode one batch and sample every sequence that is due (call :meth:`admit` first)."""
        if not self._active:
            return
        plan = self._fill_batch()
        if not plan:
            return
        rc = self._decode(plan)
        if rc != 0:
            self._recover(plan, rc)
            return
        for seq, n_fed, row in plan:
            seq.slot.tokens.extend(seq.pending[:n_fed])
            del seq.pending[:n_fed]
            if row >= 0:
                self._sample(seq, row)

    def _fill_batch(self) -> list[tuple[_Sequence, int, int]]:
        """Every decoding sequence's next token, then prompt chunks up to
        ``n_batch``, written in slot order. With one KV stream per slot llama.cpp
        splits a batch into ubatches of consecutive sequence ids only
        (``split_equal(sequential=True)``): in arrival order, 8 decoding slots took
        several ubatches, each reading every weight again (the 8-stream rate
        fell from ~180 to ~140 tok/s once slots had been reused)."""
        budget = self._m.n_batch
        takes: list[tuple[_Sequence, int]] = []
        decoding = [s for s in self._active if s.prompt_done]
        prefilling = [s for s in self._active if not s.prompt_done]
        for seq in decoding + prefilling:
            if budget <= 0:
                break
            n = min(len(seq.pending), budget)
            takes.append((seq, n))
            budget -= n
        takes.sort(key=lambda t: t[0].slot.seq_id)
        batch = self._batch
        batch.n_tokens = 0
        plan: list[tuple[_Sequence, int, int]] = []
        for seq, n in takes:
            pos = len(seq.slot.tokens)
            last = n == len(seq.pending)
            for j, token in enumerate(seq.pending[:n]):
                i = batch.n_tokens
                batch.token[i] = token
                batch.pos[i] = pos + j
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq.slot.seq_id
                batch.logits[i] = last and j == n - 1
                batch.n_tokens += 1
            plan.append((seq, n, batch.n_tokens - 1 if last else -1))
        return plan

    def _decode(self, plan: list[tuple[_Sequence, int, int]]) -> int:
        big = self._batch.n_tokens >= _ABORT_MIN_TOKENS
        if big:
            self._batch_rids = {seq.rid for seq, _, _ in plan}
            L.llama_set_abort_callback(self._m.ctx, self._abort_cb, None)
        try:
            return int(L.llama_decode(self._m.ctx, self._batch))
        finally:
            if big:
                L.llama_set_abort_callback(self._m.ctx, L.ggml_abort_callback(0), None)
                self._batch_rids = set()

    def _should_abort(self, _data: ctypes.c_void_p) -> bool:
        return not self._batch_rids.isdisjoint(self.cancel_requests)

    def _recover(self, plan: list[tuple[_Sequence, int, int]], rc: int) -> None:
        """Undo a decode that was aborted (2) or failed; cells it wrote are removed."""
        for seq, _, _ in plan:
            L.llama_memory_seq_rm(self._mem, seq.slot.seq_id, len(seq.slot.tokens), -1)
        if rc == 2:
            return
        for seq, _, _ in plan:
            self._drop(seq, f"llama_decode failed with status {rc}")

    # -- sampling and finishing -------------------------------------------------

    def _sample(self, seq: _Sequence, row: int) -> None:
        now = time.perf_counter()
        if not seq.prompt_done:
            seq.prompt_done = True
            seq.t_prompt_done = now
        if seq.closing is None:
            token: int | None = seq.sampler.sample(self._m.ctx, row)
        else:
            token = self._closing_token(seq, seq.closing, row)
        if token is None:  # the document is complete and the drawn token did not fit
            self._finish(seq, "length", hit_stop=False)
            return
        if L.llama_vocab_is_eog(self._m.vocab, token):
            self._finish(seq, "stop", hit_stop=False)
            return
        seq.generated.append(token)
        piece = seq.detok.feed(token)
        if seq.logprobs is not None:
            top = seq.params.top_logprobs
            m = self._m
            seq.logprobs.add(logprobs_at(m.ctx, row, m.n_vocab, token, top, m.piece, piece))
        text, hit = seq.stopper.push(piece)
        self._send(seq, text, hit)
        if hit:
            self._finish(seq, "stop", hit_stop=True)
        elif self._exhausted(seq) or (
            seq.closing and seq.closing.closed and not seq.closing.forced
        ):
            self._finish(seq, "length", hit_stop=False)
        else:
            seq.pending = [token]

    def _closing_token(self, seq: _Sequence, closing: _Closing, row: int) -> int | None:
        """The drawn token, unless it leaves too few tokens to finish the document;
        then (and until it is done) the next token of the cheapest completion, or
        None when the document is already complete.

        The invariant: the completion of ``closing.state`` fits in the tokens left,
        after the bytes that finish a character cut between tokens (an emoji is
        often three). The closing text is tokenized only when its byte count (a
        bound on its tokens) no longer fits, so far from the limit this costs one
        state advance.
        """
        sampler = seq.sampler
        if closing.forced:
            token = closing.forced.popleft()
        else:
            token = sampler.draw(self._m.ctx, row)
            if L.llama_vocab_is_eog(self._m.vocab, token):
                sampler.accept(token)
                return token
            text, held = seq.detok.peek(token)
            after = closing.closer.advance(closing.state, text)
            if after is None:  # only if the closer and llama.cpp disagree: stop closing
                seq.closing = None
            if after is None or self._fits(
                closing.closer, after, held, closing.limit - len(seq.generated) - 1
            ):
                sampler.accept(token)
                closing.state = after or closing.state
                return token
            closing.forced.extend(self._completion(closing.closer, closing.state, seq.detok.held))
            closing.closed = True
            if not closing.forced:
                return None
            token = closing.forced.popleft()
        after = closing.closer.advance(closing.state, seq.detok.peek(token)[0])
        if after is None or not sampler.allows(token):  # they disagree: stop closing
            seq.closing = None
            token = sampler.draw(self._m.ctx, row)
        else:
            closing.state = after
        sampler.accept(token)
        return token

    def _fits(self, closer: Closer, state: State, held: bytes, left: int) -> bool:
        finished = self._finish_char(closer, state, held)
        if finished is None:
            return False
        tokens, state = finished
        left -= len(tokens)
        cost = closer.cost(state)
        return cost <= left or len(self._m.tokenize_text(closer.completion(state))) <= left

    def _completion(self, closer: Closer, state: State, held: bytes) -> list[int]:
        """The tokens that finish the document: the invariant says they fit. (A cut
        character is accepted only when it can be finished, so the fallback is
        never taken; were it, llama.cpp would refuse the tokens and closing stop.)"""
        tokens, state = self._finish_char(closer, state, held) or ([], state)
        return tokens + self._m.tokenize_text(closer.completion(state))

    def _finish_char(
        self, closer: Closer, state: State, held: bytes
    ) -> tuple[list[int], State] | None:
        """A token per byte that finishes a character cut after ``held`` (none when
        nothing is cut) and the state after it; None when no token can."""
        if not held:
            return [], state
        finish = closer.finish(state, held)
        if finish is None:
            return None
        rest, after = finish
        tokens = [t for byte in rest if (t := self._m.byte_token(byte)) is not None]
        return (tokens, after) if len(tokens) == len(rest) else None

    def _send(self, seq: _Sequence, text: str, cut: bool) -> None:
        """Emit released text with the log-probabilities of the tokens it completes."""
        logprobs: tuple[TokenLogprob, ...] = ()
        if seq.logprobs is not None:
            logprobs = seq.logprobs.release(len(text))
            if cut:
                logprobs += seq.logprobs.cut()
        if text or logprobs:
            self._emit(Text(seq.rid, text, logprobs))

    def _exhausted(self, seq: _Sequence) -> bool:
        """``num_predict`` (``num_ctx`` when not given) reached, or no room left and
        none can be made by shifting."""
        limit = seq.params.num_predict
        if 0 <= (self._m.n_ctx if limit is None else limit) <= len(seq.generated):
            return True
        if len(seq.slot.tokens) + 1 < self._m.n_ctx:
            return False
        return not (seq.params.shift and self._shift(seq))

    def _shift(self, seq: _Sequence) -> bool:
        """Ollama's context shift: keep ``num_keep`` tokens, drop half of the rest,
        and slide the remainder down so generation continues."""
        tokens = seq.slot.tokens
        keep = max(0, min(seq.params.num_keep, len(tokens) // 2))
        discard = (len(tokens) - keep) // 2
        if discard <= 0 or not L.llama_memory_can_shift(self._mem):
            return False
        if not L.llama_memory_seq_rm(self._mem, seq.slot.seq_id, keep, keep + discard):
            return False
        L.llama_memory_seq_add(self._mem, seq.slot.seq_id, keep + discard, -1, -discard)
        del tokens[keep : keep + discard]
        return True

    def _finish(self, seq: _Sequence, reason: str, hit_stop: bool) -> None:
        if not hit_stop:
            tail, hit = seq.stopper.push(seq.detok.flush())
            tail += "" if hit else seq.stopper.flush()
            self._send(seq, tail, cut=True)
        end = time.perf_counter()
        self._emit(
            Done(
                rid=seq.rid,
                reason=reason,
                prompt_eval_count=len(seq.prompt),
                prompt_cached_count=seq.cached,
                prompt_eval_ns=int((seq.t_prompt_done - seq.t_start) * 1e9),
                eval_count=len(seq.generated),
                eval_ns=int((end - seq.t_prompt_done) * 1e9),
                context=tuple(seq.prompt + seq.generated) if seq.return_context else (),
                closed=seq.closing is not None and seq.closing.closed,
            )
        )
        if seq.persist and self._cache is not None:
            self._cache.persist(seq.slot.seq_id, seq.slot.tokens, seq.persist, seq.owner)
        self._release(seq)

    def _drop(self, seq: _Sequence, message: str) -> None:
        L.llama_memory_seq_rm(self._mem, seq.slot.seq_id, -1, -1)
        seq.slot.tokens.clear()
        self._release(seq)
        self._emit(Failed(seq.rid, "internal", message))

    def _release(self, seq: _Sequence) -> None:
        seq.sampler.close()
        seq.slot.busy = False
        seq.slot.last_used = time.perf_counter()
        self._active.remove(seq)
