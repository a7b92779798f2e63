"""A bad proxy configuration: ``llamaport serve`` exits non-zero naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamaport.runtime.proxy import ConfigError, load_config

GOOD = """
[[upstream]]
name = "gpu-a"
kind = "openai"
url = "http://10.0.0.5:8000"
api_key_env = "GPU_A_KEY"
models = ["qwen2.5:7b"]
max_concurrency = 64
timeout_s = 600

[[route]]
model = "qwen2.5:7b"
upstreams = ["gpu-a", "local"]
upstream_model = "Qwen/Qwen2.5-7B-Instruct"
balance = "least_outstanding"
"""

UPSTREAM = '[[upstream]]\nname = "a"\nkind = "ollama"\nurl = "http://127.0.0.1:1"\n'

BAD = [
    (UPSTREAM.replace("url =", 'nmae = "x"\nurl ='), "upstream[0].nmae"),
    (UPSTREAM + UPSTREAM, "upstream[1].name"),
    (UPSTREAM + '[[route]]\nmodel = "m"\nupstreams = ["a", "b"]\n', "route[0].upstreams[1]"),
    (UPSTREAM.replace("http://127.0.0.1:1", "ftp//nowhere"), "upstream[0].url"),
    (UPSTREAM.replace('"ollama"', '"vllm"'), "upstream[0].kind"),
    (UPSTREAM.replace('name = "a"', 'name = "local"'), "upstream[0].name"),
    (UPSTREAM + "[[route]\n", "line 5"),
    (
        UPSTREAM + '[[route]]\nmodel = "m"\nupstreams = ["a"]\nbalance = "random"\n',
        "route[0].balance",
    ),
]
IDS = ["unknown-key", "duplicate-name", "unknown-upstream", "bad-url", "bad-kind", "reserved-name",
       "syntax-line", "bad-balance"]  # fmt: skip


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "llamaport.compat.cli.main", "serve"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config is not None
    assert config.upstream[0].base_url == "http://10.0.0.5:8000/v1"
    assert config.route[0].upstreams == ["gpu-a", "local"]


def test_no_file_is_local_only(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.toml") is None


@pytest.mark.parametrize(("text", "key"), BAD, ids=IDS)
def test_a_bad_file_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


@pytest.mark.parametrize(("text", "key"), [BAD[0], BAD[2], BAD[6]], ids=[IDS[0], IDS[2], IDS[6]])
def test_serve_refuses_a_bad_file(tmp_path: Path, text: str, key: str) -> None:
    """The file named by LLAMAPORT_CONFIG; the server never starts listening."""
    path = tmp_path / "proxy.toml"
    path.write_text(text)
    env = {**os.environ, "LLAMAPORT_HOME": str(tmp_path), "LLAMAPORT_CONFIG": str(path)}
    env["LLAMAPORT_HOST"] = "127.0.0.1:1"  # never bound: the refusal comes first
    done = _serve(env)
    assert done.returncode != 0
    assert key in done.stderr


def test_the_default_file_is_home_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BAD[0][0])
    env = {**os.environ, "LLAMAPORT_HOME": str(tmp_path), "LLAMAPORT_HOST": "127.0.0.1:1"}
    env.pop("LLAMAPORT_CONFIG", None)
    done = _serve(env)
    assert done.returncode != 0 and "upstream[0].nmae" in done.stderr
