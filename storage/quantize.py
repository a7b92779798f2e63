"""Quantize a GGUF with llama.cpp's own quantizer, in a child process.

``llama_model_quantize`` (through llama-cpp-python) blocks for as long as it
takes and may abort the process on a bad file, so it runs in
``python -m llamaport.storage.quantize SRC DST FTYPE``. The child turns
llama.cpp's per-tensor log lines (``[  3/ 21] blk.0.attn_k.weight ...``) into
``done total`` lines on stdout, which :func:`quantize` hands to its caller
as progress. Only this module and ``runtime/engine`` import ``llama_cpp``.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from llamaport.storage.errors import CreateError, StorageError

__all__ = ["QUANTIZE_TYPES", "SOURCE_TYPES", "parse_quantize_type", "quantize"]

QUANTIZE_TYPES: dict[str, int] = {
    "F32": 0,
    "F16": 1,
    "Q4_0": 2,
    "Q4_1": 3,
    "Q8_0": 7,
    "Q5_0": 8,
    "Q5_1": 9,
    "Q2_K": 10,
    "Q3_K_S": 11,
    "Q3_K_M": 12,
    "Q3_K_L": 13,
    "Q4_K_S": 14,
    "Q4_K_M": 15,
    "Q5_K_S": 16,
    "Q5_K_M": 17,
    "Q6_K": 18,
    "BF16": 32,
}
"""Target names to llama.cpp's ``LLAMA_FTYPE`` numbers: every type that needs no
importance matrix (Ollama offers F32, F16, Q4_K_S, Q4_K_M and Q8_0)."""

_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}
SOURCE_TYPES = frozenset({"F32", "F16", "BF16"})
"""File types that can be quantized; quantizing a quantized model loses twice."""

_PROGRESS = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")
_GGML_LOG_LEVEL_ERROR = 4


def parse_quantize_type(name: str) -> str:
    """The canonical type name for ``name`` (any case, ``Q4_K`` for ``Q4_K_M``).

    Raises ``CreateError`` with Ollama's wording for an unknown type.
    """
    upper = name.upper()
    upper = _ALIASES.get(upper, upper)
    if upper not in QUANTIZE_TYPES:
        supported = ", ".join(QUANTIZE_TYPES)
        raise CreateError(f"unsupported quantization type {name} - supported types are {supported}")
    return upper


def quantize(src: Path, dst: Path, type_name: str) -> Iterator[tuple[int, int]]:
    """Write ``src`` quantized to ``type_name`` (canonical) at ``dst``.

    Yields ``(tensors done, tensors in all)`` as llama.cpp goes. Raises
    ``StorageError`` with llama.cpp's reason if the child fails; closing the
    generator early kills the child.
    """
    command = [
        sys.executable,
        "-m",
        "llamaport.storage.quantize",
        str(src),
        str(dst),
        str(QUANTIZE_TYPES[type_name]),
    ]
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for line in proc.stdout:
                done, _, total = line.decode().partition(" ")
                yield int(done), int(total)
        except GeneratorExit:
            proc.kill()
            raise
        errors = proc.stderr.read().decode(errors="replace").strip()
        code = proc.wait()
    if code != 0:
        reason = errors.splitlines()[0] if errors else f"exit status {code}"
        raise StorageError(f"quantization failed: {reason}")


def _child(src: str, dst: str, ftype: int) -> int:
    """The quantizing process: progress on stdout, llama.cpp's errors on stderr."""
    import llama_cpp as L

    def log(level: int, text: bytes, _data: ctypes.c_void_p) -> None:
        match = _PROGRESS.match(text)
        if match is not None:
            sys.stdout.write(f"{int(match[1])} {int(match[2])}\n")
            sys.stdout.flush()
        elif level == _GGML_LOG_LEVEL_ERROR:
            sys.stderr.write(text.decode(errors="replace"))

    callback = L.llama_log_callback(log)
    L.llama_log_set(callback, ctypes.c_void_p(0))
    L.llama_backend_init()
    params = L.llama_model_quantize_default_params()
    params.ftype = ftype
    rc = int(L.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))
    if rc != 0:
        sys.stderr.write(f"\nllama_model_quantize returned {rc}\n")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))
