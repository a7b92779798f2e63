"""``llamaport push`` and ``llamaport pull`` as processes, against docker-registry.

Progress goes to stderr as rich draws it: on a pipe, status lines plus each
layer's finished bar (``pulling <12 hex>: ... 100% ...``), in the server's order.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from llamaport.storage.store import Store
from tests.compat._registry import DockerRegistry
from tests.conftest import MODEL, Server, free_port

CLI = [sys.executable, "-m", "llamaport.compat.cli.main"]


def llamaport(server: Server, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "LLAMAPORT_"))}
    env.update(LLAMAPORT_HOST=server.host, LLAMAPORT_HOME=str(home), COLUMNS="160")
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def order(text: str, *needles: str) -> list[int]:
    return [text.index(needle) for needle in needles]


def test_push_then_pull_show_progress(
    server: Server, docker_registry: DockerRegistry, tmp_path: Path
) -> None:
    store = Store(server.home / "models")
    name = f"{docker_registry.host}/test/cli:v1"
    store.copy(MODEL, name)
    weights = store.get(name).model_path.name.removeprefix("sha256-")[:12]

    pushed = llamaport(server, tmp_path, "push", name, "--insecure")
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == ""
    positions = order(
        pushed.stderr, "retrieving manifest", f"pushing {weights}:", "pushing manifest", "success"
    )
    assert positions == sorted(positions)

    store.delete(name)
    pulled = llamaport(server, tmp_path, "pull", name, "--insecure")
    assert pulled.returncode == 0, pulled.stderr
    positions = order(
        pulled.stderr,
        "pulling manifest",
        f"pulling {weights}:",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    )
    assert positions == sorted(positions)
    bar = re.search(rf"pulling {weights}:.*\n", pulled.stderr)
    assert bar is not None and "98.4" in bar.group(0)  # bytes shown in decimal MB
    assert store.find(name) is not None


def test_pull_errors_are_reported(
    server: Server, docker_registry: DockerRegistry, tmp_path: Path
) -> None:
    missing = llamaport(
        server, tmp_path, "pull", f"{docker_registry.host}/test/absent:v1", "--insecure"
    )
    assert missing.returncode == 1
    assert missing.stderr.endswith("Error: pull model manifest: file does not exist\n")
    plain = llamaport(server, tmp_path, "pull", f"http://{docker_registry.host}/test/absent:v1")
    assert (plain.returncode, plain.stderr) == (1, "Error: insecure protocol http\n")
    offline = llamaport(server, tmp_path, "pull", "registry.invalid/library/m")
    assert offline.returncode == 1
    assert offline.stderr.endswith("Error: could not reach registry.invalid: name not resolved\n")


def only_in_the_registry(
    server: Server, registry: DockerRegistry, home: Path, repository: str
) -> tuple[str, list[str]]:
    """Push a copy of the embedded model, then drop it here: its name and layer digests."""
    store = Store(server.home / "models")
    name = f"{registry.host}/{repository}:v1"
    store.copy(MODEL, name)
    manifest = store.get(name).manifest
    layers = [layer.digest for layer in [*manifest.layers, manifest.config]]
    assert llamaport(server, home, "push", name, "--insecure").returncode == 0
    store.delete(name)
    return name, layers


def test_pull_verbose_adds_a_line_per_layer(
    server: Server, docker_registry: DockerRegistry, tmp_path: Path
) -> None:
    name, layers = only_in_the_registry(server, docker_registry, tmp_path, "test/cli-verbose")
    pulled = llamaport(server, tmp_path, "pull", name, "--insecure", "--verbose")
    assert pulled.returncode == 0, pulled.stderr
    for digest in layers:
        assert re.search(rf"^{digest} [\d.]+ [KMG]?B in [\d.]+s$", pulled.stderr, re.M), digest


def test_run_pulls_a_model_only_the_registry_has_then_answers(
    server: Server, docker_registry: DockerRegistry, tmp_path: Path
) -> None:
    name, _ = only_in_the_registry(server, docker_registry, tmp_path, "test/cli-auto")
    answered = llamaport(server, tmp_path, "run", name, "--insecure", "--keepalive", "0", "Say hi")
    assert answered.returncode == 0, answered.stderr
    positions = order(answered.stderr, "pulling manifest", "writing manifest", "success")
    assert positions == sorted(positions)
    assert answered.stdout.strip()
    assert Store(server.home / "models").find(name) is not None


def test_run_with_the_registry_down_names_it(server: Server, tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    failed = llamaport(server, tmp_path, "run", f"{closed}/test/m:v1", "--insecure", "hi")
    assert failed.returncode == 1
    assert failed.stderr.endswith(f"Error: could not reach {closed}: connection refused\n")
