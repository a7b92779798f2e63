"""``/openapi.json`` documents a request body for every route that reads one.

The routes decode their own bodies (for Ollama's and OpenAI's error texts), so
FastAPI would document none; :mod:`llamaport.compat.openapi` states them. The
operations checked are every one FastAPI lists from the app's routes, so a new
body route without ``openapi_extra=json_body(...)`` fails here. The served document is also what
the fuzzer (``test_fuzz.py``) reads.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.core.result import Ok

from llamaport.compat.app import create_app
from llamaport.compat.client import CreateBody, GenerateBody
from llamaport.compat.openai.protocol import ChatBody
from tests.conftest import Server

BODYLESS = {
    ("DELETE", "/v1/conversations/{conversation_id}"),
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"),
    ("DELETE", "/v1/responses/{response_id}"),
}
"""Deletes that take their target from the path and read no body, as OpenAI's."""


def _document() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GET+HEAD routes share an operation id
        return create_app().openapi()


def _body_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = document["paths"][path][method.lower()]["requestBody"]
    assert body["required"] is True
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def test_every_route_that_reads_a_body_documents_it() -> None:
    document = _document()
    writes = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    ]
    assert len(writes) > 20
    undocumented = [
        (method, path)
        for method, path in writes
        if (method, path) not in BODYLESS
        and "requestBody" not in document["paths"][path][method.lower()]
    ]
    assert undocumented == []
    for method, path in BODYLESS:
        assert "requestBody" not in document["paths"][path][method.lower()]


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/api/generate", GenerateBody),
        ("POST", "/api/create", CreateBody),
        ("POST", "/v1/chat/completions", ChatBody),
    ],
    ids=["native-generate", "native-create", "openai-chat"],
)
def test_body_schema_is_the_protocol_model(method: str, path: str, model: type[Any]) -> None:
    """Field names as the wire spells them (aliases), required fields, nested models inline."""
    document = _document()
    schema = _body_schema(document, method, path)
    wire_names = {f.alias or name for name, f in model.model_fields.items()}
    assert set(schema["properties"]) == wire_names
    assert schema.get("required", []) == [
        f.alias or name for name, f in model.model_fields.items() if f.is_required()
    ]
    assert "$ref" not in json.dumps(schema)


def test_blob_upload_documents_raw_bytes() -> None:
    document = _document()
    body = document["paths"]["/api/blobs/{digest}"]["post"]["requestBody"]
    assert body["content"]["application/octet-stream"]["schema"]["format"] == "binary"


def test_served_document_loads_in_schemathesis(server: Server) -> None:
    """Every operation of the served document parses, bodies included."""
    raw = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    results = list(schemathesis.openapi.from_dict(raw).get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)
    with_body = [op for op in operations if op.body]
    document = _document()
    expected = sum("requestBody" in op for ops in document["paths"].values() for op in ops.values())
    assert len(with_body) == expected
