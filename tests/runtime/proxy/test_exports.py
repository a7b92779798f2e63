"""``llamaport.runtime.proxy.__all__`` re-exports each module's public names it lists."""

from __future__ import annotations

import importlib

import pytest

import llamaport.runtime.proxy as proxy

MODULES = [
    "choice",
    "config",
    "errors",
    "health",
    "ollama_kind",
    "openai_kind",
    "router",
    "upstream",
]


def test_package_all_entries_exist() -> None:
    assert [name for name in proxy.__all__ if not hasattr(proxy, name)] == []
    assert len(proxy.__all__) == len(set(proxy.__all__))


@pytest.mark.parametrize("module", MODULES)
def test_module_all_names_exist(module: str) -> None:
    mod = importlib.import_module(f"llamaport.runtime.proxy.{module}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} listed but missing"
        if name in proxy.__all__:
            assert getattr(proxy, name) is getattr(mod, name)
