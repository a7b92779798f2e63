"""Request bodies in the OpenAPI document (``/openapi.json``, ``/docs``).

Routes read their own bodies (``protocol.decode``) so that a bad body gets
Ollama's or OpenAI's exact error text and status, never FastAPI's 422; FastAPI
therefore sees no body parameter and documents none. A route states its body
with ``openapi_extra=json_body(Model)``: the schema is the protocol model's own
(``model_json_schema``), so the document cannot drift from what ``decode``
accepts, and decoding is untouched.

Nested models are inlined rather than put under ``components``: the two faces
both have a ``ChatBody`` and a ``MessageBody``, and an inline schema needs no
names at all.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["BINARY_BODY", "json_body"]

BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
"""``openapi_extra`` of a route whose body is raw bytes (``POST /api/blobs/{digest}``)."""


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition.

    The protocol models are not recursive, so this ends.
    """
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _inline(defs[ref.removeprefix("#/$defs/")], defs)
    return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that decodes its JSON body as ``model``."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}},
        }
    }
