"""``POST /v1/embeddings``: the same normalised vectors as ``/api/embed``, in either encoding."""

from __future__ import annotations

import base64
import math
import struct

import httpx
import openai
import pytest

from tests.conftest import MODEL

TEXTS = ["The sky is blue.", "Grass is green."]


def _native(client: httpx.Client, texts: list[str]) -> list[list[float]]:
    r = client.post("/api/embed", json={"model": MODEL, "input": texts})
    assert r.status_code == 200, r.text
    vectors: list[list[float]] = r.json()["embeddings"]
    return vectors


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b, strict=True)
    )


def test_sdk_default_is_base64_and_decodes_to_the_native_vectors(
    oai: openai.OpenAI, client: httpx.Client
) -> None:
    """The SDK asks for base64 unless told otherwise and decodes it itself."""
    result = oai.embeddings.create(model=MODEL, input=TEXTS)
    assert [d.index for d in result.data] == [0, 1]
    native = _native(client, TEXTS)
    for got, want in zip(result.data, native, strict=True):
        assert _close(got.embedding, want)
        assert math.isclose(math.fsum(v * v for v in got.embedding), 1.0, rel_tol=1e-4)
    assert result.model == MODEL
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens


def test_base64_is_little_endian_float32(client: httpx.Client) -> None:
    body = {"model": MODEL, "input": TEXTS[0], "encoding_format": "base64"}
    r = client.post("/v1/embeddings", json=body)
    assert r.status_code == 200, r.text
    encoded = r.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded, validate=True)
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert _close(decoded, _native(client, TEXTS[:1])[0])


def test_float_encoding_is_a_list(oai: openai.OpenAI, client: httpx.Client) -> None:
    result = oai.embeddings.create(model=MODEL, input=TEXTS[0], encoding_format="float")
    (item,) = result.data
    assert item.object == "embedding"
    assert _close(item.embedding, _native(client, TEXTS[:1])[0])
    r = client.post("/v1/embeddings", json={"model": MODEL, "input": TEXTS[0]})
    assert isinstance(r.json()["data"][0]["embedding"], list)


@pytest.mark.parametrize("dimensions", [8, 64])
def test_dimensions_cut_and_renormalise(oai: openai.OpenAI, dimensions: int) -> None:
    result = oai.embeddings.create(model=MODEL, input=TEXTS[0], dimensions=dimensions)
    vector = result.data[0].embedding
    assert len(vector) == dimensions
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-4)
