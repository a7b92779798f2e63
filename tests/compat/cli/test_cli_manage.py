"""``create``, ``cp``, ``rm`` and ``list`` through the real command against a real server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llamaport.storage.embedded import embedded_gguf_path
from tests._tiny_models import write_embedded_copy, write_lora, write_tiny_llama
from tests.compat.cli.test_cli_e2e import CLI, cli_env, llamaport, table
from tests.conftest import MODEL, Server, serving


@pytest.fixture(scope="module")
def create_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("cli-create-server"))


@pytest.fixture
def env(create_server: Server, tmp_path: Path) -> dict[str, str]:
    return cli_env(create_server.host, tmp_path / "cli-home")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("cli-ggufs") / "tiny.gguf")


def tags(server: Server) -> dict[str, dict[str, object]]:
    models = httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]
    return {m["name"]: m for m in models}


def _uploads(server: Server) -> int:
    """The blob uploads ``server`` logged."""
    return sum(line["path"].startswith("/api/blobs/") for line in server.access("POST"))


def test_create_imports_a_gguf_larger_than_the_json_body_limit(
    env: dict[str, str], create_server: Server, tmp_path: Path
) -> None:
    """The tutorials' way to import a downloaded GGUF; uploads were once capped by
    LLAMAPORT_MAX_REQUEST_BYTES (64 MiB), so any real model failed."""
    big = write_embedded_copy(tmp_path / "big.gguf", {"general.name": "big import"})
    assert big.stat().st_size > 90 * 1024 * 1024
    (tmp_path / "Modelfile").write_text("FROM ./big.gguf\n")
    done = llamaport("create", "cli-big", "-f", str(tmp_path / "Modelfile"), env=env)
    assert done.returncode == 0, done.stderr
    model = tags(create_server)["cli-big:latest"]
    assert model["size"] >= big.stat().st_size  # the weights plus the config blob


def test_create_from_a_modelfile_with_a_local_file(
    env: dict[str, str], create_server: Server, tiny: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "weights").mkdir()
    (folder / "weights" / "tiny.gguf").write_bytes(tiny.read_bytes())
    (folder / "Modelfile").write_text(
        "FROM ./weights/tiny.gguf\n"
        'SYSTEM """Answer in one word."""\n'
        "PARAMETER num_predict 3\n"
        "PARAMETER temperature 0\n"
        "PARAMETER mirostat 1\n"
        "MESSAGE user hello\n"
        "MESSAGE assistant hi\n"
        "REQUIRES v0.14.0\n"
    )
    before = _uploads(create_server)
    done = llamaport("create", "cli-tiny", "-f", str(folder / "Modelfile"), env=env)
    assert done.returncode == 0, done.stderr
    assert "warning: parameter mirostat is deprecated" in done.stderr
    assert "copying file sha256:" in done.stderr
    assert done.stderr.rstrip().endswith("success")
    show = httpx.post(f"{create_server.url}/api/show", json={"model": "cli-tiny"}, timeout=30)
    info = show.json()
    assert info["requires"] == "0.14.0"
    assert info["system"] == "Answer in one word."
    assert info["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
    ]
    body = {"model": "cli-tiny", "prompt": "hi", "stream": False}
    final = httpx.post(f"{create_server.url}/api/generate", json=body, timeout=120).json()
    assert 0 < final["eval_count"] <= 3
    uploads = _uploads(create_server)
    assert uploads == before + 1
    again = llamaport("create", "cli-tiny2", "-f", str(folder / "Modelfile"), env=env)
    assert again.returncode == 0, again.stderr
    assert "copying file sha256:" in again.stderr
    assert _uploads(create_server) == uploads, "HEAD said it exists"
    assert {"cli-tiny:latest", "cli-tiny2:latest"} <= set(tags(create_server))


def test_create_quantized_and_the_default_modelfile(
    env: dict[str, str], create_server: Server, tiny: Path, tmp_path: Path
) -> None:
    (tmp_path / "Modelfile").write_text(f"FROM {tiny}\n")
    done = subprocess_in(tmp_path, "create", "cli-q", "--quantize", "q4_K_M", env=env)
    assert done.returncode == 0, done.stderr
    assert "quantizing F16 model to Q4_K_M" in done.stderr
    details = tags(create_server)["cli-q:latest"]["details"]
    assert isinstance(details, dict) and details["quantization_level"] == "Q4_K_M"


def subprocess_in(
    folder: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the command in ``folder``, where it looks for ``Modelfile`` by default."""
    return subprocess.run(
        [*CLI, *args], env=env, cwd=folder, capture_output=True, text=True, timeout=240
    )


def test_create_with_an_adapter(env: dict[str, str], create_server: Server, tmp_path: Path) -> None:
    base = embedded_gguf_path()
    assert base is not None
    write_lora(tmp_path / "lora.gguf", base)
    (tmp_path / "Modelfile").write_text(f"FROM {MODEL}\nADAPTER ./lora.gguf\n")
    done = llamaport("create", "cli-lora", "-f", str(tmp_path / "Modelfile"), env=env)
    assert done.returncode == 0, done.stderr
    manifest_dir = create_server.home / "models" / "manifests" / "registry.ollama.ai"
    manifest = json.loads((manifest_dir / "library" / "cli-lora" / "latest").read_bytes())
    kinds = [layer["mediaType"].rsplit(".", 1)[-1] for layer in manifest["layers"]]
    assert kinds == ["model", "adapter"]


@pytest.mark.parametrize(
    ("modelfile", "error"),
    [
        (f"FROM {MODEL}\nPARAMETER numa 1\n", "Error: (line 2): unknown parameter 'numa'\n"),
        (f"FROM {MODEL}\nMESSAGE robot hi\n", "Error: (line 2): message role must be one of"),
        ("SYSTEM alone\n", "Error: no FROM line\n"),
        (
            f"FROM {MODEL}\nADAPTER ./missing.gguf\n",
            "Error: ADAPTER ./missing.gguf: no such file\n",
        ),
    ],
    ids=["unknown-parameter", "bad-role", "no-from", "missing-adapter"],
)
def test_create_refuses_a_bad_modelfile(
    env: dict[str, str], create_server: Server, tmp_path: Path, modelfile: str, error: str
) -> None:
    (tmp_path / "Modelfile").write_text(modelfile)
    done = llamaport("create", "cli-bad", "-f", str(tmp_path / "Modelfile"), env=env)
    assert done.returncode == 1
    assert done.stderr.startswith(error), done.stderr
    assert "cli-bad:latest" not in tags(create_server)


def test_create_without_the_modelfile(env: dict[str, str], tmp_path: Path) -> None:
    done = llamaport("create", "x", "-f", str(tmp_path / "nope"), env=env)
    assert (done.returncode, done.stderr) == (1, "Error: specified Modelfile wasn't found\n")
    empty = subprocess_in(tmp_path, "create", "x", env=env)
    assert empty.returncode == 1
    assert empty.stderr == f"Error: no Modelfile or GGUF files found in {tmp_path.resolve()}\n"


def test_create_from_the_gguf_files_of_the_folder(
    env: dict[str, str], create_server: Server, tiny: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.gguf").write_bytes(tiny.read_bytes())
    done = subprocess_in(tmp_path, "create", "cli-folder", env=env)
    assert done.returncode == 0, done.stderr
    assert "cli-folder:latest" in tags(create_server)


def test_cp_list_rm_round_trip(env: dict[str, str], create_server: Server) -> None:
    copied = llamaport("cp", MODEL, "mine/smol:copy", env=env)
    assert (copied.returncode, copied.stdout) == (0, f"copied '{MODEL}' to 'mine/smol:copy'\n")
    listed = llamaport("list", env=env)
    rows = table(listed.stdout)
    assert rows[0] == ["NAME", "ID", "SIZE", "MODIFIED"]
    row = next(r for r in rows if r[0] == "mine/smol:copy")
    assert row[2] == "98 MB" and row[3].endswith("ago")
    removed = llamaport("rm", "mine/smol:copy", env=env)
    assert (removed.returncode, removed.stdout) == (0, "deleted 'mine/smol:copy'\n")
    assert "mine/smol:copy" not in tags(create_server)
    again = llamaport("rm", "mine/smol:copy", env=env)
    assert (again.returncode, again.stderr) == (1, "Error: model 'mine/smol:copy' not found\n")
    bad = llamaport("cp", "nope", "x", env=env)
    assert (bad.returncode, bad.stderr) == (1, 'Error: model "nope" not found\n')
