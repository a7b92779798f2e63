"""``llamaport.storage.__all__`` names exactly the package's public API.

The modules are found, not listed: every public module directly in
``storage`` has an ``__all__`` that the package re-exports whole, and every
storage package (``registry``, ``conversations``) has an ``__all__`` whose
names exist.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import llamaport.storage as storage


def _packages() -> list[str]:
    found = ["llamaport.storage"]
    found += [
        m.name for m in pkgutil.walk_packages(storage.__path__, "llamaport.storage.") if m.ispkg
    ]
    return found


def _public_modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [
        f"{package}.{m.name}"
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_") and not m.ispkg
    ]


PACKAGES = _packages()
MODULES = [("llamaport.storage", m) for m in _public_modules("llamaport.storage")]


def test_the_layout_is_found() -> None:
    assert {"llamaport.storage.registry", "llamaport.storage.conversations"} <= set(PACKAGES)
    assert ("llamaport.storage", "llamaport.storage.store") in MODULES
    assert ("llamaport.storage", "llamaport.storage.errors") in MODULES


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_entries_exist(package: str) -> None:
    pkg = importlib.import_module(package)
    missing = [name for name in pkg.__all__ if not hasattr(pkg, name)]
    assert missing == []
    assert len(pkg.__all__) == len(set(pkg.__all__))


def _reexported(pkg: ModuleType, mod: ModuleType) -> list[str]:
    return [n for n in mod.__all__ if n in pkg.__all__ and getattr(pkg, n) is getattr(mod, n)]


@pytest.mark.parametrize(("package", "module"), MODULES, ids=[m for _, m in MODULES])
def test_module_all_is_reexported(package: str, module: str) -> None:
    pkg, mod = importlib.import_module(package), importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} listed but missing"
    assert _reexported(pkg, mod) == list(mod.__all__), f"{module} not all re-exported"


def test_key_names_are_public() -> None:
    for name in ["Store", "ModelRecord", "Name", "parse_name", "read_gguf_info", "GGUFInfo"]:
        assert name in storage.__all__
