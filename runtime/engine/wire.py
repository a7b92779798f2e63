"""The only messages that cross the engine process boundary.

The server sends commands (:class:`Submit`, :class:`Cancel`, :class:`Embed`,
:class:`Shutdown`) and the engine answers with events tagged by the request
id. Everything here is a plain picklable dataclass: no llama.cpp objects, no
asyncio objects.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Cancel",
    "Command",
    "Detokenize",
    "Detokenized",
    "Done",
    "Embed",
    "Embedded",
    "EngineInfo",
    "Event",
    "Failed",
    "Forget",
    "LoadFailed",
    "LoadSpec",
    "Ready",
    "SamplingParams",
    "Segment",
    "Shutdown",
    "Started",
    "Submit",
    "Text",
    "TokenLogprob",
    "Tokenize",
    "Tokens",
]


@dataclass(frozen=True)
class LoadSpec:
    """How to load one model into one engine process."""

    model_path: str
    n_ctx: int
    """Context length of each parallel sequence (Ollama's ``num_ctx``)."""
    n_parallel: int
    n_batch: int = 512
    n_gpu_layers: int = -1
    """-1 means every layer when the build can offload, else none."""
    main_gpu: int = 0
    use_mmap: bool = True
    n_threads: int = 0
    flash_attn: bool | None = None
    kv_cache_type: str = "f16"
    adapters: tuple[str, ...] = ()
    cache_ram: int = 0
    """MiB of host memory for the KV state of evicted sequences (0: no such cache)."""
    cache_disk: int = 0
    """MiB of disk for stored conversations' KV state under ``cache_dir`` (0: none)."""
    cache_dir: str = ""


@dataclass(frozen=True)
class EngineInfo:
    n_ctx: int
    """Effective context per sequence after clamping to the trained length."""
    n_ctx_train: int
    n_parallel: int
    n_vocab: int
    n_embd: int
    n_layer: int
    n_gpu_layers: int
    gpu_offload: bool
    model_size: int
    description: str
    pid: int


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = -1
    num_predict: int | None = None
    """At most this many tokens; -1 for no limit. None (not given) stops after
    ``num_ctx`` tokens, so a model that never ends cannot run on through
    context shifts."""
    stop: tuple[str, ...] = ()
    format: str = ""
    """Constrain output: ``""`` (free text), ``"json"``, or a JSON-encoded schema."""
    num_keep: int = 4
    shift: bool = True
    """When the context fills, drop half the tokens after ``num_keep`` and go on."""
    logprobs: bool = False
    """Report each sampled token's log-probability on the ``Text`` events."""
    top_logprobs: int = 0
    """With ``logprobs``: also this many most likely tokens at each step."""
    think_budget: int = 0
    """With a ``format``: the output may first think for up to this many characters
    and close with ``</think>`` (0: no thinking span before the format)."""
    think_opened: bool = True
    """The prompt already ends inside ``<think>``; else the span must open it."""


@dataclass(frozen=True)
class Segment:
    """A piece of prompt.

    ``special`` says whether control-token text inside ``text`` may become
    control tokens: true for template text, false for anything a user wrote.
    ``tokens`` carries pre-tokenized ids (Ollama's deprecated ``context``).
    """

    text: str = ""
    special: bool = False
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class Submit:
    rid: int
    segments: tuple[Segment, ...]
    sampling: SamplingParams
    return_context: bool = False
    persist: str = ""
    """For a stored conversation's turn: what the tokens mean (the model's digest and
    template, hashed); the engine reads its KV state from disk and writes it back
    under this identity. Empty for every other request."""
    owner: str = ""
    """With ``persist``: the stored conversation the turn belongs to (its id, or a
    response chain's first item), named in the KV file so that deleting the
    conversation removes the file (:class:`Forget`)."""


@dataclass(frozen=True)
class Cancel:
    rid: int


@dataclass(frozen=True)
class Embed:
    rid: int
    texts: tuple[str, ...]
    truncate: bool = True


@dataclass(frozen=True)
class Tokenize:
    rid: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Detokenize:
    rid: int
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Forget:
    """Remove the KV files of ``owner``'s turns, once those still being written are
    on disk. No answer."""

    owner: str


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Submit | Cancel | Embed | Tokenize | Detokenize | Forget | Shutdown


@dataclass(frozen=True)
class Ready:
    info: EngineInfo


@dataclass(frozen=True)
class LoadFailed:
    message: str


@dataclass(frozen=True)
class Started:
    """The request got a sequence slot; ``cached`` prompt tokens were reused."""

    rid: int
    prompt_tokens: int
    cached: int


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log-probability under the model; ``token`` is the text it
    added to the output (``bytes`` are its raw bytes), ``top`` the most likely
    alternatives at that step, best first."""

    token: str
    logprob: float
    bytes: bytes
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Text:
    rid: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    """The tokens whose text ``text`` completes, when the request asked for logprobs."""


@dataclass(frozen=True)
class Done:
    rid: int
    reason: str
    prompt_eval_count: int
    prompt_cached_count: int
    prompt_eval_ns: int
    eval_count: int
    eval_ns: int
    context: tuple[int, ...] = ()
    closed: bool = False
    """The token limit was near, so the engine wrote the shortest completion of the
    format's document itself (``reason`` is ``length``)."""


@dataclass(frozen=True)
class Failed:
    rid: int
    kind: str
    """``prompt_too_long``, ``input_too_long``, ``canceled`` or ``internal``."""
    message: str
    n_tokens: int = 0


@dataclass(frozen=True)
class Embedded:
    rid: int
    vectors: tuple[tuple[float, ...], ...]
    n_tokens: int


@dataclass(frozen=True)
class Tokens:
    rid: int
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Detokenized:
    rid: int
    text: str


Event = Ready | LoadFailed | Started | Text | Done | Failed | Embedded | Tokens | Detokenized
