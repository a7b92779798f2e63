"""The wheel ships every package of the layers and the client side (pyproject lists them
by hand)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"storage", "runtime", "compat", "integrations"}


def test_every_package_directory_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        "llamaport." + ".".join(init.parent.relative_to(ROOT).parts)
        for layer in LAYERS
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {p for p in listed if (ROOT / p.split(".", 1)[1].replace(".", "/")).is_dir()} == listed


def test_the_chat_pages_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["llamaport.compat"]
    static = ROOT / "compat" / "static"
    files = {p.relative_to(ROOT / "compat") for p in static.iterdir()}
    covered = {f for f in files if any(f.match(pattern) for pattern in patterns)}
    assert "index.html" in {f.name for f in files}
    assert covered == files, f"add to package-data: {sorted(map(str, files - covered))}"
