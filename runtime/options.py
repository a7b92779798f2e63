"""Ollama's ``options``: names, types, defaults and precedence.

Precedence is defaults < the model's Modelfile ``PARAMETER``s < the request's
``options``. Unknown keys are ignored and ``null`` values mean "not set", as
Ollama and its clients expect; a value of the wrong type is a 400 (Ollama
answers 500 there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from llamaport.runtime.engine.wire import SamplingParams
from llamaport.runtime.errors import BadRequest
from llamaport.storage.params import OPTION_TYPES
from llamaport.storage.settings import FOREVER, parse_duration

__all__ = [
    "LOAD_OPTIONS",
    "LoadOptions",
    "Options",
    "parse_keep_alive",
    "resolve_options",
    "validate_options",
]

LOAD_OPTIONS = frozenset(
    {"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict"}
)
"""Fixed at load. ``draft_num_predict`` is accepted and has no effect (no draft models yet)."""
_TYPE_NAMES = {int: "integer", float: "float32", bool: "boolean", list: "array of strings"}


def _coerce(name: str, value: Any) -> Any:
    kind = OPTION_TYPES[name]
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        return [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f'option "{name}" must be of type {_TYPE_NAMES[kind]}')


def validate_options(raw: Any) -> dict[str, Any]:
    """Check a request's ``options`` mapping; return only the set, known keys."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("options must be an object")
    return {k: _coerce(k, v) for k, v in raw.items() if v is not None and k in OPTION_TYPES}


@dataclass(frozen=True)
class LoadOptions:
    """Options fixed when an engine loads; changing them may need a reload."""

    num_ctx: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool = True
    num_thread: int = 0


_SAMPLING = SamplingParams()
"""The one table of sampling defaults (Ollama's): the engine's own parameter type."""


@dataclass(frozen=True)
class Options:
    """The resolved per-request options; sampling ones default from :class:`SamplingParams`."""

    num_keep: int = _SAMPLING.num_keep
    seed: int = _SAMPLING.seed
    num_predict: int | None = _SAMPLING.num_predict
    """None when neither the request nor the Modelfile sets it (see
    :attr:`SamplingParams.num_predict`); -1 is Ollama's "no limit"."""
    top_k: int = _SAMPLING.top_k
    top_p: float = _SAMPLING.top_p
    min_p: float = _SAMPLING.min_p
    typical_p: float = _SAMPLING.typical_p
    repeat_last_n: int = _SAMPLING.repeat_last_n
    temperature: float = _SAMPLING.temperature
    repeat_penalty: float = _SAMPLING.repeat_penalty
    presence_penalty: float = _SAMPLING.presence_penalty
    frequency_penalty: float = _SAMPLING.frequency_penalty
    stop: tuple[str, ...] = _SAMPLING.stop
    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    use_mmap: bool | None = None
    num_thread: int | None = None
    requested: frozenset[str] = field(default=frozenset(), compare=False)

    def sampling(self, fmt: str) -> SamplingParams:
        """The engine's sampling parameters: every option they share, and ``format``."""
        shared = {name: getattr(self, name) for name in _SAMPLING_NAMES}
        return replace(_SAMPLING, format=fmt, **shared)

    def load_options(self, default_ctx: int, default_threads: int) -> LoadOptions:
        return LoadOptions(
            num_ctx=max(4, self.num_ctx or default_ctx),
            num_batch=max(1, self.num_batch or 512),
            num_gpu=-1 if self.num_gpu is None else self.num_gpu,
            main_gpu=self.main_gpu or 0,
            use_mmap=True if self.use_mmap is None else self.use_mmap,
            num_thread=self.num_thread or default_threads,
        )


_FIELD_NAMES = frozenset(f.name for f in fields(Options)) - {"requested"}
_SAMPLING_NAMES = _FIELD_NAMES & {f.name for f in fields(SamplingParams)}


def resolve_options(model_params: dict[str, Any], request: dict[str, Any]) -> Options:
    """Merge defaults < Modelfile parameters < request options."""
    merged: dict[str, Any] = {}
    for source in (model_params, request):
        for key, value in validate_options(source).items():
            if key in _FIELD_NAMES:
                merged[key] = tuple(value) if key == "stop" else value
    return Options(**merged, requested=frozenset(request))


def parse_keep_alive(value: Any) -> float | None:
    """Parse a request's ``keep_alive``: seconds (number) or a Go duration (string).

    ``None`` means "not given". Negative values mean forever. Errors use
    Ollama's texts.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest("Unsupported type: 'bool'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value.strip())
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    else:
        raise BadRequest(f"Unsupported type: '{type(value).__name__}'")
    return FOREVER if seconds < 0 else seconds
