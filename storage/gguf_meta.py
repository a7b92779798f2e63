"""What the server needs to know about a GGUF file without loading its weights.

``read_gguf_info`` turns the header into a :class:`GGUFInfo`: the facts
``/api/tags`` and ``/api/show`` report (family, parameter size, quantization,
context length, ``model_info``) and the chat-template facts the runtime uses.
Results are memoised by (path, size, mtime, inode), so repeated requests for
the same blob cost one ``stat``.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamaport.storage._gguf_reader import RawGGUF, StringArray, parse_gguf
from llamaport.storage.errors import CorruptModel
from llamaport.storage.manifest import ModelConfig

__all__ = [
    "EMBEDDING_ARCHITECTURES",
    "FILE_TYPE_NAMES",
    "GGUFInfo",
    "TensorInfo",
    "adapter_problem",
    "capabilities",
    "config_for_gguf",
    "human_number",
    "read_gguf_info",
]

FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "MXFP4",  # llama.cpp retired Q4_1_SOME_F16 here; Ollama reuses it for MXFP4
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4",
}
"""llama.cpp's ``LLAMA_FTYPE`` numbers (``general.file_type``) to Ollama's names."""

EMBEDDING_ARCHITECTURES = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "t5encoder",
    }
)
"""Architectures that only embed; they never get the ``completion`` capability."""

_HIDDEN_KEYS = ("general.name", "tokenizer.chat_template")
_SHOWN_ARRAY_MAX = 5
_ARRAYS = (list, StringArray)
"""What a GGUF array reads as (:mod:`~llamaport.storage._gguf_reader`)."""
_CAPABILITY_ORDER = (
    "completion",
    "tools",
    "insert",
    "vision",
    "embedding",
    "thinking",
    "image",
    "audio",
)


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as ``/api/show`` (verbose) lists it."""

    name: str
    type: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class GGUFInfo:
    """Facts read from a GGUF header.

    The instance is cached and shared between callers: treat ``model_info``
    and ``model_info_verbose`` as read-only, and copy them before changing
    anything (for example the Copilot ``general.basename`` override).
    ``model_info`` has every array longer than 5 replaced by ``[]``, as
    ``/api/show`` without ``verbose``; ``model_info_verbose`` keeps them all,
    long string arrays as :class:`~llamaport.storage._gguf_reader.StringArray`
    (see :meth:`shown_info` for a JSON-ready copy).
    """

    architecture: str
    context_length: int | None
    embedding_length: int | None
    parameter_count: int
    file_type: str
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    pooling_type: int | None
    families: tuple[str, ...]
    model_info: dict[str, Any]
    model_info_verbose: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    general_type: str
    has_vision: bool

    def shown_info(self, verbose: bool) -> dict[str, Any]:
        """``model_info`` as ``/api/show`` returns it: a copy the caller may change,
        with every array a list when ``verbose``."""
        if not verbose:
            return dict(self.model_info)
        return {
            key: list(value) if isinstance(value, StringArray) else value
            for key, value in self.model_info_verbose.items()
        }

    @property
    def parameter_size(self) -> str:
        """``human_number(parameter_count)``: ``details.parameter_size`` in the API."""
        return human_number(self.parameter_count)


def human_number(n: int) -> str:
    """Ollama's ``format.HumanNumber``: ``134.52M``, ``2.8B``, ``1B``, ``1K``.

    Billions keep one decimal, millions two, thousands none, and whole values
    drop the decimals altogether.
    """
    for scale, suffix, decimals in ((10**9, "B", 1), (10**6, "M", 2)):
        if n >= scale:
            value = n / scale
            return f"{value:.{0 if value.is_integer() else decimals}f}{suffix}"
    if n >= 10**3:
        return f"{n / 10**3:.0f}K"
    return str(n)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _token_text(kv: dict[str, Any], id_key: str) -> str | None:
    tokens = kv.get("tokenizer.ggml.tokens")
    index = _int_or_none(kv.get(id_key))
    if not isinstance(tokens, _ARRAYS) or index is None or not 0 <= index < len(tokens):
        return None
    token = tokens[index]
    return token if isinstance(token, str) else None


def _file_type(raw: RawGGUF) -> str:
    """``general.file_type`` by name; else the type holding the most weights."""
    number = _int_or_none(raw.kv.get("general.file_type"))
    if number is not None and number in FILE_TYPE_NAMES:
        return FILE_TYPE_NAMES[number]
    weights: Counter[str] = Counter()
    for tensor in raw.tensors:
        weights[tensor.type_name] += tensor.n_elements
    return weights.most_common(1)[0][0] if weights else "unknown"


def _model_info(kv: dict[str, Any], parameter_count: int) -> dict[str, Any]:
    info = {key: value for key, value in kv.items() if key not in _HIDDEN_KEYS}
    info["general.parameter_count"] = parameter_count
    return dict(sorted(info.items()))


def _from_raw(raw: RawGGUF) -> GGUFInfo:
    kv = raw.kv
    arch_value = kv.get("general.architecture")
    arch = arch_value if isinstance(arch_value, str) and arch_value else "unknown"
    declared = _int_or_none(kv.get("general.parameter_count"))
    parameter_count = declared or sum(tensor.n_elements for tensor in raw.tensors)
    template = kv.get("tokenizer.chat_template")
    verbose = _model_info(kv, parameter_count)
    shown = {
        key: [] if isinstance(value, _ARRAYS) and len(value) > _SHOWN_ARRAY_MAX else value
        for key, value in verbose.items()
    }
    general_type = kv.get("general.type")
    return GGUFInfo(
        architecture=arch,
        context_length=_int_or_none(kv.get(f"{arch}.context_length")),
        embedding_length=_int_or_none(kv.get(f"{arch}.embedding_length")),
        parameter_count=parameter_count,
        file_type=_file_type(raw),
        chat_template=template if isinstance(template, str) and template else None,
        bos_token=_token_text(kv, "tokenizer.ggml.bos_token_id"),
        eos_token=_token_text(kv, "tokenizer.ggml.eos_token_id"),
        pooling_type=_int_or_none(kv.get(f"{arch}.pooling_type")),
        families=(arch,),
        model_info=shown,
        model_info_verbose=verbose,
        tensors=tuple(TensorInfo(t.name, t.type_name, t.shape) for t in raw.tensors),
        general_type=general_type if isinstance(general_type, str) else "model",
        has_vision=f"{arch}.vision.block_count" in kv or bool(kv.get("clip.has_vision_encoder")),
    )


@functools.lru_cache(maxsize=16)
def _read_cached(path: Path, size: int, mtime_ns: int, inode: int) -> GGUFInfo:
    """Memo keyed by the file's identity; a rewritten file gets a fresh entry."""
    del size, mtime_ns, inode  # only part of the cache key
    return _from_raw(parse_gguf(path))


def read_gguf_info(path: Path) -> GGUFInfo:
    """Read (or recall) the header facts of the GGUF file at ``path``.

    Raises ``InvalidGGUF`` when the content is not a whole GGUF file, and
    ``CorruptModel`` when the file cannot be opened at all.
    """
    try:
        stat = path.stat()
        return _read_cached(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    except OSError as exc:
        raise CorruptModel(f"cannot read GGUF file {path}: {exc.strerror or exc}") from None


def _template_has_thinking(template: str) -> bool:
    """Think tags (as Ollama checks), or a Jinja ``enable_thinking`` switch."""
    if "<think>" in template and "</think>" in template:
        return True
    if "content.split('</think>')" in template or 'content.split("</think>")' in template:
        return True
    return "enable_thinking" in template


def capabilities(
    info: GGUFInfo, template: str | None = None, *, has_projector: bool = False
) -> list[str]:
    """What a model can do, in Ollama's canonical order.

    ``template`` is the model's Go TEMPLATE layer when it has one; without it
    the GGUF's own Jinja ``chat_template`` decides ``tools``/``thinking``.
    ``insert`` needs a ``suffix`` variable, which only Go templates expose.
    """
    found: set[str] = set()
    chat = info.chat_template or ""
    embeds = info.architecture in EMBEDDING_ARCHITECTURES or (
        info.pooling_type is not None and not chat and template is None
    )
    found.add("embedding" if embeds else "completion")
    if template is not None:
        lowered = template.lower()
        if ".tools" in lowered:
            found.add("tools")
        if ".suffix" in lowered:
            found.add("insert")
        if _template_has_thinking(template):
            found.add("thinking")
    elif chat:
        if "tools" in chat or "tool_call" in chat:
            found.add("tools")
        if _template_has_thinking(chat):
            found.add("thinking")
    if has_projector or info.has_vision:
        found.add("vision")
    return [name for name in _CAPABILITY_ORDER if name in found]


def adapter_problem(adapter: GGUFInfo, base: GGUFInfo) -> str | None:
    """Why llama.cpp would refuse to apply ``adapter`` to ``base``, or None if it fits.

    A LoRA must say so (``general.type`` adapter, ``adapter.type`` lora), be
    for the base's architecture, and hold A/B pairs whose shapes match the
    base tensor they patch (A: in x rank, B: rank x out).
    """
    if (
        adapter.general_type != "adapter"
        or adapter.model_info_verbose.get("adapter.type") != "lora"
    ):
        return "is not a LoRA adapter GGUF"
    if adapter.architecture != base.architecture:
        return f"is for architecture {adapter.architecture}, but the model is {base.architecture}"
    shapes = {t.name: t.shape for t in base.tensors}
    pairs = {t.name: t.shape for t in adapter.tensors}
    targets = [name.removesuffix(".lora_a") for name in pairs if name.endswith(".lora_a")]
    if not targets:
        return "has no LoRA tensors"
    for target in targets:
        a, b, want = pairs[f"{target}.lora_a"], pairs.get(f"{target}.lora_b"), shapes.get(target)
        fits = (
            b is not None
            and want is not None
            and len(a) == len(b) == len(want) == 2
            and (a[0], b[1], a[1]) == (want[0], want[1], b[0])
        )
        if not fits:
            return f"does not fit the model: tensor {target}"
    return None


def config_for_gguf(info: GGUFInfo) -> ModelConfig:
    """The config blob Ollama writes for a model whose weights are this GGUF."""
    return ModelConfig(
        model_family=info.architecture,
        model_families=info.families,
        model_type=info.parameter_size,
        file_type=info.file_type,
    )
