"""The app's start-up: models named in LLAMAPORT_PRELOAD load without a request."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from tests.conftest import MODEL, Server


def test_preloaded_models_load_at_start_and_bad_names_are_skipped(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server(LLAMAPORT_PRELOAD=f"no-such-model:1,{MODEL}")
    deadline = time.monotonic() + 90
    with srv.client() as c:
        while True:
            models = c.get("/api/ps").json()["models"]
            if models:
                break
            assert time.monotonic() < deadline, "the preloaded model never loaded"
            time.sleep(0.2)
    assert [m["name"] for m in models] == [MODEL]
    assert "no-such-model:1" in srv.log.read_text()


def test_serve_imports_no_sdk_that_only_some_requests_need() -> None:
    """Start-up time: the openai SDK (openai-kind upstreams), aiohttp (ollama-kind
    upstreams), huggingface_hub (hf.co pulls), llama_cpp (engine processes), gguf
    and numpy (reading a GGUF) are imported only where they are used."""
    lazy = "{'openai', 'aiohttp', 'huggingface_hub', 'llama_cpp', 'gguf', 'numpy'}"
    code = f"import sys, llamaport.compat.server; print(sorted({lazy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
