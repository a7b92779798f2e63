"""The integration packages export exactly their classes, and they and the client
package they use (``llamaport.compat.client``) import nothing of the server."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "langchain": {"ChatLlamaport", "LlamaportLLM", "LlamaportEmbeddings", "APIError"},
    "llama_index": {"Llamaport", "LlamaportEmbedding", "APIError"},
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_lists_the_public_classes(package: str) -> None:
    module = importlib.import_module(f"llamaport.integrations.{package}")
    assert set(module.__all__) == PUBLIC[package]
    assert all(hasattr(module, name) for name in module.__all__)


def test_no_server_layer_is_imported() -> None:
    code = (
        "import sys, llamaport.compat.client, llamaport.integrations.langchain, "
        "llamaport.integrations.llama_index\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['llamaport', 'storage'], ['llamaport', 'runtime'], ['llamaport', 'compat']) "
        "and m != 'llamaport.compat' and not m.startswith('llamaport.compat.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
