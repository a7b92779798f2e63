"""Every module of every package names its public API in ``__all__``, and each name exists.

The modules are found by walking the packages, not listed, so a new module
is checked the day it is added. A package ``__init__`` that defines nothing
(``runtime``, ``compat``, ...) needs no ``__all__``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import llamaport.compat
import llamaport.integrations
import llamaport.runtime
import llamaport.storage

PACKAGES: list[ModuleType] = [
    llamaport.storage,
    llamaport.runtime,
    llamaport.compat,
    llamaport.integrations,
]


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}."):
            if not info.name.endswith(".__main__"):  # running it is its whole job
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def _defines_nothing(module: ModuleType) -> bool:
    """Only submodules (imported by the walk) and ``from __future__`` are in it."""
    public = {n: v for n, v in vars(module).items() if not n.startswith("_")}
    return all(isinstance(v, ModuleType) or n == "annotations" for n, v in public.items())


def test_the_walk_finds_every_layer() -> None:
    assert {
        "llamaport.compat.cli.repl",
        "llamaport.compat.client._client",
        "llamaport.runtime.history",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert _defines_nothing(module), f"{name} has public names but no __all__"
        return
    assert [n for n in exported if not hasattr(module, n)] == []
    assert len(exported) == len(set(exported))
