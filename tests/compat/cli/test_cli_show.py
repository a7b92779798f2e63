"""``llamaport show`` with its one-field flags and ``-v``, against a real server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from llamaport.compat.cli.commands import Console
from llamaport.compat.cli.main import run_cli
from llamaport.storage.modelfile import parse_modelfile
from llamaport.storage.settings import Settings, parse_host
from tests.compat.conftest import TemplatedModel
from tests.conftest import MODEL, Server


def _show(server: Server, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    settings = Settings(host=parse_host(server.url), home=tmp_path)
    code = run_cli(["show", *args], console, settings)
    assert isinstance(console.stdout, io.StringIO) and isinstance(console.stderr, io.StringIO)
    return code, console.stdout.getvalue(), console.stderr.getvalue()


@pytest.mark.parametrize(
    ("flag", "field", "newline"),
    [
        ("--license", "license", True),
        ("--modelfile", "modelfile", True),
        ("--parameters", "parameters", True),
        ("--system", "system", False),
        ("--template", "template", False),
    ],
)
def test_one_field(
    server: Server,
    tmp_path: Path,
    templated_model: TemplatedModel,
    flag: str,
    field: str,
    newline: bool,
) -> None:
    code, out, err = _show(server, tmp_path, templated_model.name, flag)
    assert (code, err) == (0, "")
    expected = {
        "license": templated_model.license,
        "system": templated_model.system,
        "template": templated_model.template,
    }
    if field in expected:
        assert out == expected[field] + ("\n" if newline else "")
    elif field == "modelfile":
        assert parse_modelfile(out).parameters == templated_model.params
    else:
        assert out.splitlines()[0].split() == ["num_predict", "3"]


def test_only_one_field(server: Server, tmp_path: Path) -> None:
    code, out, err = _show(server, tmp_path, MODEL, "--system", "--license")
    assert (code, out) == (1, "")
    assert err == (
        "Error: only one of '--license', '--modelfile', '--parameters', '--system', "
        "or '--template' can be specified\n"
    )


def test_info_tables(server: Server, tmp_path: Path, templated_model: TemplatedModel) -> None:
    code, out, _ = _show(server, tmp_path, templated_model.name)
    assert code == 0
    sections = [line for line in out.splitlines() if line.startswith("  ") and line[2] != " "]
    assert sections == ["  Model", "  Capabilities", "  Parameters", "  System", "  License"]
    assert "    MIT License    \n    Copyright      \n    ...            \n" in out


def test_verbose_adds_metadata_and_tensors(server: Server, tmp_path: Path) -> None:
    code, out, _ = _show(server, tmp_path, MODEL, "-v")
    assert code == 0
    sections = [line for line in out.splitlines() if line.startswith("  ") and line[2] != " "]
    assert sections == ["  Model", "  Capabilities", "  Metadata", "  Tensors"]
    rows = [line.split() for line in out.splitlines()]
    assert ["general.architecture", "llama"] in rows
    assert ["llama.context_length", "8192"] in rows
    tokens = next(r for r in rows if r and r[0] == "tokenizer.ggml.tokens")
    assert tokens[-2:] == ["...+49151", "more]"]
