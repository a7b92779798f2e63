"""The import direction: storage → runtime → compat, and a client side apart.

Every module's imports are read with :mod:`ast` (no import runs), so a lazy
import inside a function counts too. ``storage`` imports no other layer,
``runtime`` only ``storage``, ``compat`` any of them and the client; the
client side (``client``, ``integrations``) imports no server layer. Every
import of project code is spelled ``llamaport.*``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "storage": {"storage"},
    "runtime": {"storage", "runtime"},
    "compat": {"storage", "runtime", "compat", "client"},
    "client": {"client"},
    "integrations": {"client", "integrations"},
}
"""What each package may import of ``llamaport``."""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


MODULES = sorted(p for layer in ALLOWED for p in (ROOT / layer).rglob("*.py"))


def test_every_layer_has_modules() -> None:
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_imports_follow_the_layers(path: Path) -> None:
    layer = path.relative_to(ROOT).parts[0]
    wrong = []
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] in ALLOWED:
            wrong.append(f"{line}: bare import {name} (spell it llamaport.{name})")
        elif parts[0] == "llamaport" and len(parts) > 1 and parts[1] not in ALLOWED[layer]:
            wrong.append(f"{line}: {layer} imports {name}")
    assert wrong == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from llamaport.compat.app import create_app\n")
    assert _imports(bad) == [(2, "llamaport.compat.app")]
