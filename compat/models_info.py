"""What both faces say about a stored model: Ollama's ``details`` and capabilities.

``/api/tags``, ``/api/ps``, ``/api/show`` and ``/v1/models`` describe models
from the same record and GGUF header, so they are built once, here.
"""

from __future__ import annotations

from typing import Any

from llamaport.storage.gguf_meta import GGUFInfo, capabilities
from llamaport.storage.store import ModelRecord

__all__ = ["model_capabilities", "model_details"]


def model_details(record: ModelRecord, info: GGUFInfo) -> dict[str, Any]:
    """Ollama's ``details`` object."""
    return {
        "parent_model": record.parent_model,
        "format": "gguf",
        "family": info.architecture,
        "families": list(info.families),
        "parameter_size": info.parameter_size,
        "quantization_level": info.file_type,
        "context_length": info.context_length,
        "embedding_length": info.embedding_length,
    }


def model_capabilities(record: ModelRecord, info: GGUFInfo) -> list[str]:
    """``completion``, ``tools``, ``vision``... as the runtime checks them."""
    return capabilities(info, record.template, has_projector=bool(record.projectors))
