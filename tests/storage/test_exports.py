"""``llamaport.storage.__all__`` names exactly the package's public API."""

from __future__ import annotations

import importlib

import pytest

import llamaport.storage as storage

MODULES = [
    "create",
    "embedded",
    "errors",
    "gguf_meta",
    "layout",
    "manifest",
    "modelfile",
    "names",
    "params",
    "progress",
    "quantize",
    "settings",
    "store",
]


def test_package_all_entries_exist() -> None:
    missing = [name for name in storage.__all__ if not hasattr(storage, name)]
    assert missing == []
    assert len(storage.__all__) == len(set(storage.__all__))


@pytest.mark.parametrize("module", MODULES)
def test_module_all_is_reexported(module: str) -> None:
    mod = importlib.import_module(f"llamaport.storage.{module}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} listed but missing"
        assert name in storage.__all__, f"{module}.{name} not re-exported"
        assert getattr(storage, name) is getattr(mod, name)


def test_key_names_are_public() -> None:
    for name in ["Store", "ModelRecord", "Name", "parse_name", "read_gguf_info", "GGUFInfo"]:
        assert name in storage.__all__
