"""The engine process: one loaded model, one owner thread, one batching loop.

The server starts one of these per loaded model (like Ollama's runners), so a
llama.cpp abort or an out-of-memory kill takes down one model and never the
server. The main thread owns every llama.cpp handle. A receiver thread only
reads commands from the pipe into a queue, and flags cancellations so the
abort callback can stop a long prefill at once.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import llama_cpp as L

from llamaport.runtime.engine.batcher import Batcher, Model, invalid_token
from llamaport.runtime.engine.detokenizer import Detokenizer
from llamaport.runtime.engine.kv_disk import DiskCache, state_format
from llamaport.runtime.engine.prefix_cache import PrefixCache
from llamaport.runtime.engine.segment_tokens import SegmentTokens
from llamaport.runtime.engine.wire import (
    Cancel,
    Command,
    Detokenize,
    Detokenized,
    Embed,
    Embedded,
    EngineInfo,
    Event,
    Failed,
    Forget,
    LoadFailed,
    LoadSpec,
    Ready,
    Shutdown,
    Submit,
    Tokenize,
    Tokens,
)

__all__ = ["main"]

_KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
_ALL_LAYERS = 0x7FFFFFFF
_MIN_CTX = 256
_EMBED_SEQS = 32
"""Inputs one embedding decode packs together: one batch, a sequence each."""
_SEGMENT_TOKENS_BYTES = 16 << 20
"""What the engine keeps of prompt segments' token ids (:mod:`.segment_tokens`)."""


def _quiet(_level: int, _text: bytes, _data: ctypes.c_void_p) -> None:
    return None


def _to_stderr(_level: int, text: bytes, _data: ctypes.c_void_p) -> None:
    sys.stderr.write(text.decode(errors="replace"))


_LOG_NOWHERE = L.llama_log_callback(_quiet)
_LOG_TO_STDERR = L.llama_log_callback(_to_stderr)
"""llama.cpp keeps the log callback for the life of the process, so the ctypes
wrappers live as long as the module (one held by an engine would dangle after it)."""


def _amx_built_in() -> bool:
    """Whether this llama.cpp build multiplies on AMX tiles.

    Its AMX kernel (``ggml_backend_amx_mul_mat``) segfaults on the AMX Xeons
    we test on, so an engine on such a build keeps weights out of the extra
    (AMX and repacked) buffer types; ``make`` builds without AMX instead.
    """
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(L.__file__), "lib", "libggml-cpu.so"))
        return bool(lib.ggml_cpu_has_amx_int8())
    except (OSError, AttributeError):
        return False


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _packs(inputs: list[list[int]], max_tokens: int, max_seqs: int) -> list[list[list[int]]]:
    """``inputs`` in order, cut into consecutive groups of at most ``max_seqs``
    sequences and ``max_tokens`` tokens (each input alone fits)."""
    packs: list[list[list[int]]] = []
    size = 0
    for tokens in inputs:
        if not packs or len(packs[-1]) == max_seqs or size + len(tokens) > max_tokens:
            packs.append([])
            size = 0
        packs[-1].append(tokens)
        size += len(tokens)
    return packs


class Engine:
    """Loads the model and answers commands until told to stop."""

    def __init__(self, spec: LoadSpec, debug: bool = False) -> None:
        L.llama_log_set(_LOG_TO_STDERR if debug else _LOG_NOWHERE, ctypes.c_void_p(0))
        L.llama_backend_init()
        self.spec = spec
        mparams = L.llama_model_default_params()
        gpu = bool(L.llama_supports_gpu_offload())
        layers = spec.n_gpu_layers if spec.n_gpu_layers >= 0 else (_ALL_LAYERS if gpu else 0)
        mparams.n_gpu_layers = layers if gpu else 0
        mparams.main_gpu = spec.main_gpu
        mparams.use_extra_bufts = not _amx_built_in()
        mparams.load_mode = L.LLAMA_LOAD_MODE_MMAP if spec.use_mmap else L.LLAMA_LOAD_MODE_NONE
        self.model = L.llama_model_load_from_file(spec.model_path.encode(), mparams)
        if not self.model:
            raise RuntimeError(f"unable to load model: {spec.model_path}")
        self.adapters = [self._load_adapter(path) for path in spec.adapters]
        self.vocab = L.llama_model_get_vocab(self.model)
        n_train = int(L.llama_model_n_ctx_train(self.model))
        self.n_ctx = min(spec.n_ctx, n_train) if n_train > 0 else spec.n_ctx
        self.threads = spec.n_threads or _default_threads()
        self.ctx = self._fitting_context()
        self.n_batch = int(L.llama_n_batch(self.ctx))
        n_layer = int(L.llama_model_n_layer(self.model))
        desc = ctypes.create_string_buffer(256)
        L.llama_model_desc(self.model, desc, 256)
        self.info = EngineInfo(
            n_ctx=self.n_ctx,
            n_ctx_train=n_train,
            n_parallel=spec.n_parallel,
            n_vocab=int(L.llama_vocab_n_tokens(self.vocab)),
            n_embd=int(L.llama_model_n_embd(self.model)),
            n_layer=n_layer,
            n_gpu_layers=min(layers, n_layer + 1) if gpu else 0,
            gpu_offload=gpu,
            model_size=int(L.llama_model_size(self.model)),
            description=desc.value.decode(errors="replace"),
            pid=os.getpid(),
        )
        self._embed_ctx: Any = None
        self._piece_buf = ctypes.create_string_buffer(256)
        self._byte_tokens: dict[int, int] | None = None
        self._segments = SegmentTokens(self.tokenize_text, _SEGMENT_TOKENS_BYTES)

    def _load_adapter(self, path: str) -> Any:
        """A LoRA applied to every context of this model (Modelfile ``ADAPTER``)."""
        adapter = L.llama_adapter_lora_init(self.model, path.encode())
        if not adapter:
            raise RuntimeError(f"unable to load adapter {os.path.basename(path)}: it does not fit")
        return adapter

    def _apply_adapters(self, ctx: Any) -> None:
        count = len(self.adapters)
        if not count:
            return
        adapters = (L.llama_adapter_lora_p_ctypes * count)(*self.adapters)
        scales = (ctypes.c_float * count)(*([1.0] * count))
        if L.llama_set_adapters_lora(ctx, adapters, count, scales) != 0:
            L.llama_free(ctx)
            raise RuntimeError("unable to apply the LoRA adapters")

    def _new_context(
        self, n_ctx: int, n_seq: int, embeddings: bool, pooling: int = -1, unified: bool = False
    ) -> Any:
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_ctx if embeddings else min(self.spec.n_batch, n_ctx)
        cp.n_ubatch = cp.n_batch
        cp.n_seq_max = n_seq
        cp.kv_unified = unified
        cp.n_threads = self.threads
        cp.n_threads_batch = self.threads
        cp.embeddings = embeddings
        cp.pooling_type = pooling
        if self.spec.flash_attn is not None:
            cp.flash_attn_type = int(self.spec.flash_attn)
        kv = _KV_TYPES.get(self.spec.kv_cache_type, 1)
        cp.type_k = kv
        cp.type_v = kv if self.spec.flash_attn else 1
        ctx = L.llama_init_from_model(self.model, cp)
        if not ctx:
            raise RuntimeError(f"unable to create a context of {n_ctx} tokens")
        self._apply_adapters(ctx)
        return ctx

    def _fitting_context(self) -> Any:
        """The generation context: ``n_parallel`` sequences of ``num_ctx`` cells each.

        The memory decision is Ollama's: every slot gets the whole ``num_ctx``
        (non-unified KV, allocated up front), so the KV cache holds ``num_ctx ×
        n_parallel`` tokens. When llama.cpp cannot allocate that, ``num_ctx`` is
        halved (down to ``_MIN_CTX``) and the slot count kept: concurrency stays,
        each sequence's window shrinks, and the service tells every request
        (``num_ctx N does not fit in memory; using M``).
        """
        while True:
            try:
                return self._new_context(
                    self.n_ctx * self.spec.n_parallel, self.spec.n_parallel, False
                )
            except RuntimeError:
                if self.n_ctx <= _MIN_CTX:
                    raise
                self.n_ctx = max(_MIN_CTX, self.n_ctx // 2)

    def batch_model(self) -> Model:
        """The generation context and helpers, as a :class:`Batcher` takes them."""
        return Model(
            ctx=self.ctx,
            vocab=self.vocab,
            n_ctx=self.n_ctx,
            n_batch=self.n_batch,
            n_vocab=self.info.n_vocab,
            tokenize=self.tokenize,
            piece=self.piece,
            byte_token=self.byte_token,
            tokenize_text=lambda text: self.tokenize_text(text, special=False),
        )

    def disk_cache(self) -> DiskCache | None:
        """Stored conversations' KV files for this model and state layout, or None
        when turned off or the folder cannot be made (the engine runs on without)."""
        spec = self.spec
        if spec.cache_disk <= 0 or not spec.cache_dir:
            return None
        fmt = state_format(
            L.__version__,
            os.path.basename(spec.model_path),
            [os.path.basename(a) for a in spec.adapters],
            spec.kv_cache_type,
            spec.flash_attn,
        )
        try:
            return DiskCache(Path(spec.cache_dir), fmt, spec.cache_disk << 20)
        except OSError as exc:
            sys.stderr.write(f"kv cache on disk turned off: {exc}\n")
            return None

    # -- tokens ------------------------------------------------------------

    def tokenize_text(self, text: str, special: bool, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buf = (L.llama_token * capacity)()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, special)
        if n < 0:
            capacity = -n
            buf = (L.llama_token * capacity)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, special)
        return list(buf[:n])

    def tokenize(self, cmd: Submit | Tokenize) -> list[int]:
        tokens: list[int] = []
        for seg in cmd.segments:
            tokens.extend(seg.tokens or self._segments.get(seg.text, seg.special))
        bos = int(L.llama_vocab_bos(self.vocab))
        if L.llama_vocab_get_add_bos(self.vocab) and bos >= 0 and tokens[:1] != [bos]:
            tokens.insert(0, bos)
        return tokens

    def detokenize(self, cmd: Detokenize) -> Event:
        """Text for token ids, decoded as the streamer would; bad ids are the request's error."""
        bad = invalid_token(cmd.tokens, self.info.n_vocab)
        if bad is not None:
            return Failed(cmd.rid, "bad_request", f"invalid token id {bad}")
        decoder = Detokenizer(self.piece)
        return Detokenized(cmd.rid, "".join(decoder.feed(t) for t in cmd.tokens))

    def piece(self, token: int) -> bytes:
        """A token's bytes, with a buffer that grows instead of truncating."""
        buf = self._piece_buf
        n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            self._piece_buf = buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def byte_token(self, byte: int) -> int | None:
        """The token of this one byte alone (byte-level and byte-fallback vocabularies
        have one for every byte); the table is built on first use."""
        if self._byte_tokens is None:
            self._byte_tokens = {}
            for token in range(self.info.n_vocab):
                piece = self.piece(token)
                if len(piece) == 1:
                    self._byte_tokens.setdefault(piece[0], token)
        return self._byte_tokens.get(byte)

    def _boundary_token(self) -> int:
        """What an empty input embeds as: the BOS token, else EOS (never zero tokens)."""
        bos = int(L.llama_vocab_bos(self.vocab))
        return bos if bos >= 0 else int(L.llama_vocab_eos(self.vocab))

    # -- embeddings ----------------------------------------------------------

    def _embedding_context(self) -> Any:
        """A second context on the same weights, so embedding never touches the KV
        of running generations. Pooling follows the model, else mean pooling. Its
        ``n_ctx`` cells are one pool (unified) for up to ``_EMBED_SEQS`` inputs."""
        if self._embed_ctx is None:
            ctx = self._new_context(self.n_ctx, _EMBED_SEQS, True, unified=True)
            if L.llama_pooling_type(ctx) == L.LLAMA_POOLING_TYPE_NONE:
                L.llama_free(ctx)
                mean = L.LLAMA_POOLING_TYPE_MEAN
                ctx = self._new_context(self.n_ctx, _EMBED_SEQS, True, mean, unified=True)
            self._embed_ctx = ctx
        return self._embed_ctx

    def embed(self, cmd: Embed) -> Event:
        """Every input's pooled vector. Inputs are packed in order into as few
        decodes as fit (``n_ctx`` tokens, ``_EMBED_SEQS`` sequences each), so the
        weights are read once per pack rather than once per input."""
        inputs: list[list[int]] = []
        for text in cmd.texts:
            tokens = self.tokenize_text(text, special=False, add_special=True) or [
                self._boundary_token()
            ]
            if len(tokens) > self.n_ctx:
                if not cmd.truncate:
                    return Failed(cmd.rid, "input_too_long", "input too long", len(tokens))
                tokens = tokens[: self.n_ctx]
            inputs.append(tokens)
        ctx = self._embedding_context()
        mem = L.llama_get_memory(ctx)
        n_embd = self.info.n_embd
        batch = L.llama_batch_init(self.n_ctx, 0, 1)
        vectors: list[tuple[float, ...]] = []
        try:
            for pack in _packs(inputs, self.n_ctx, _EMBED_SEQS):
                L.llama_memory_clear(mem, True)
                batch.n_tokens = 0
                for seq, tokens in enumerate(pack):
                    for pos, token in enumerate(tokens):
                        i = batch.n_tokens
                        batch.token[i] = token
                        batch.pos[i] = pos
                        batch.n_seq_id[i] = 1
                        batch.seq_id[i][0] = seq
                        batch.logits[i] = True
                        batch.n_tokens = i + 1
                rc = L.llama_decode(ctx, batch)
                if rc != 0:
                    return Failed(cmd.rid, "internal", f"llama_decode failed with status {rc}")
                for seq in range(len(pack)):
                    ptr = L.llama_get_embeddings_seq(ctx, seq)
                    vectors.append(tuple(ptr[:n_embd]))
        finally:
            L.llama_batch_free(batch)
        return Embedded(cmd.rid, tuple(vectors), sum(map(len, inputs)))

    def close(self) -> None:
        if self._embed_ctx is not None:
            L.llama_free(self._embed_ctx)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


def _receive(conn: Connection, inbox: queue.Queue[Command], batcher: Batcher) -> None:
    """Read commands forever; a closed pipe means the server is gone."""
    while True:
        try:
            cmd: Command = conn.recv()
        except (EOFError, OSError):
            inbox.put(Shutdown())
            return
        if isinstance(cmd, Cancel):
            batcher.cancel_requests.add(cmd.rid)
        inbox.put(cmd)
        if isinstance(cmd, Shutdown):
            return


def serve(engine: Engine, conn: Connection) -> None:
    """The owner thread's loop: apply commands between decode steps.

    Events are collected while a command or a step runs and sent as one list,
    so N decoding sequences cost one pipe message per step, not N.
    """
    outbox: list[Event] = []
    emit = outbox.append

    def flush() -> None:
        if outbox:
            conn.send(list(outbox))
            outbox.clear()

    model = engine.batch_model()
    ram = engine.spec.cache_ram << 20
    disk = engine.disk_cache()
    cache = PrefixCache(engine.ctx, ram, disk) if ram > 0 or disk is not None else None
    batcher = Batcher(model, engine.spec.n_parallel, emit, cache)
    inbox: queue.Queue[Command] = queue.Queue()
    threading.Thread(target=_receive, args=(conn, inbox, batcher), daemon=True).start()
    while True:
        try:
            cmd = inbox.get(block=not batcher.has_work)
        except queue.Empty:
            _step(batcher, flush)
            continue
        if isinstance(cmd, Shutdown):
            break
        try:
            _apply(engine, batcher, cmd, emit)
        except Exception as exc:  # the command's own fault: fail it, keep serving
            emit(_failure(getattr(cmd, "rid", -1), exc))
        flush()
    batcher.close()


def _apply(engine: Engine, batcher: Batcher, cmd: Command, emit: Callable[[Event], None]) -> None:
    if isinstance(cmd, Submit):
        batcher.submit(cmd)
    elif isinstance(cmd, Cancel):
        batcher.cancel(cmd.rid)
    elif isinstance(cmd, Embed):
        emit(engine.embed(cmd))
    elif isinstance(cmd, Tokenize):
        emit(Tokens(cmd.rid, tuple(engine.tokenize(cmd))))
    elif isinstance(cmd, Detokenize):
        emit(engine.detokenize(cmd))
    elif isinstance(cmd, Forget):
        batcher.forget(cmd.owner)


def _step(batcher: Batcher, flush: Callable[[], None]) -> None:
    """One admit and decode step. An exception here is no request's fault alone:
    every request the batcher holds fails with it, and the engine serves on."""
    try:
        batcher.admit()
        flush()
        batcher.step()
    except Exception as exc:
        batcher.fail_all(f"engine error: {type(exc).__name__}: {exc}")
    flush()


def _failure(rid: int, exc: Exception) -> Failed:
    """A command's exception as its ``Failed`` answer; text UTF-8 cannot carry is the
    client's mistake (a 400), anything else the engine's."""
    if isinstance(exc, UnicodeError):
        return Failed(rid, "bad_request", f"invalid text: {exc}")
    return Failed(rid, "internal", f"engine error: {type(exc).__name__}: {exc}")


def main(conn: Connection, spec: LoadSpec, debug: bool = False) -> None:
    """Load the model, report ``Ready`` (or ``LoadFailed``), then serve ``conn``."""
    try:
        engine = Engine(spec, debug)
    except Exception as exc:
        conn.send(LoadFailed(str(exc)))
        return
    conn.send(Ready(engine.info))
    try:
        serve(engine, conn)
    finally:
        engine.close()


def _run_from_fd(fd: int) -> None:
    """``python -m llamaport.runtime.engine.worker FD``: the server passes one end
    of a socket pair as FD and sends ``(LoadSpec, debug)`` as the first message.

    A spare (:mod:`~llamaport.runtime.engine.spawn`) waits here, llama.cpp
    already imported. When the server closes its end instead, or a terminal's
    Ctrl+C reaches it unused, it exits quietly."""
    conn = Connection(fd)
    try:
        spec, debug = conn.recv()
    except (EOFError, KeyboardInterrupt):
        return
    main(conn, spec, debug)


if __name__ == "__main__":
    _run_from_fd(int(sys.argv[1]))
