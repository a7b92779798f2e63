"""The import direction: storage → runtime → compat, and a client side apart.

Every module's imports are read with :mod:`ast` (no import runs), so a lazy
import inside a function counts too. ``storage`` imports no other layer,
``runtime`` only ``storage``, ``compat`` any of them. The client side is
``compat/client`` (the one native client and the models server and client
share), which imports nothing of llamaport but itself, and ``integrations``,
which may import only ``compat.client``: so installing them pulls in no
server code (``compat/__init__.py`` imports nothing). Every import of
project code is spelled ``llamaport.*``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "storage": {"storage"},
    "runtime": {"storage", "runtime"},
    "compat": {"storage", "runtime", "compat"},
    "compat.client": {"compat.client"},
    "integrations": {"compat.client", "integrations"},
}
"""What each unit may import of ``llamaport`` (a name and everything under it)."""
TOP_LEVEL = {unit.split(".")[0] for unit in ALLOWED}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _unit(path: Path) -> str:
    """The most specific unit of :data:`ALLOWED` that holds ``path``."""
    parts = path.relative_to(ROOT).parts
    return max((u for u in ALLOWED if parts[: u.count(".") + 1] == tuple(u.split("."))), key=len)


def _wrong(unit: str, imports: list[tuple[int, str]]) -> list[str]:
    """The imports of a module in ``unit`` that break the rules."""
    wrong = []
    for line, name in imports:
        parts = name.split(".")
        if parts[0] in TOP_LEVEL:
            wrong.append(f"{line}: bare import {name} (spell it llamaport.{name})")
        elif parts[0] == "llamaport" and len(parts) > 1:
            inner = ".".join(parts[1:])
            if not any(inner == a or inner.startswith(f"{a}.") for a in ALLOWED[unit]):
                wrong.append(f"{line}: {unit} imports {name}")
    return wrong


MODULES = sorted(p for layer in TOP_LEVEL for p in (ROOT / layer).rglob("*.py"))


def test_every_unit_has_modules() -> None:
    assert {_unit(p) for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_imports_follow_the_layers(path: Path) -> None:
    assert _wrong(_unit(path), _imports(path)) == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from llamaport.compat.app import create_app\n")
    assert _imports(bad) == [(2, "llamaport.compat.app")]


@pytest.mark.parametrize(
    ("unit", "name", "allowed"),
    [
        ("integrations", "llamaport.compat.app", False),
        ("integrations", "llamaport.compat", False),
        ("integrations", "llamaport.compat.clientele", False),
        ("integrations", "llamaport.runtime.types", False),
        ("integrations", "llamaport.compat.client", True),
        ("integrations", "llamaport.compat.client._requests", True),
        ("compat.client", "llamaport.compat.errors", False),
        ("compat.client", "llamaport.storage.names", False),
        ("compat.client", "llamaport.compat.client._errors", True),
        ("compat", "llamaport.compat.client", True),
        ("runtime", "llamaport.compat.client", False),
    ],
    ids=lambda v: str(v),
)
def test_the_rules(unit: str, name: str, allowed: bool) -> None:
    assert (_wrong(unit, [(1, name)]) == []) is allowed


def test_the_units_of_paths() -> None:
    assert _unit(ROOT / "compat" / "client" / "_client.py") == "compat.client"
    assert _unit(ROOT / "compat" / "native" / "protocol.py") == "compat"
