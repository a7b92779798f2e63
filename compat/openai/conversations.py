"""OpenAI's Conversations API: ``/v1/conversations`` and their items.

Shapes are OpenAI's (``conversation``, ``conversation.deleted``, item lists
with ``first_id``/``last_id``/``has_more``). Two llamaport additions that the
SDK ignores: a conversation also carries ``title``, ``item_count`` and
``updated_at``, and
``GET /v1/conversations`` lists every conversation (the CLI's
``llamaport conversations list``). Unknown ids are 404s in OpenAI's envelope
(the store raises, ``compat/errors.py`` maps). Deleting a conversation, or
one of its items, also removes the KV files its turns left on disk
(:meth:`Service.forget`): they hold its text.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llamaport.compat.errors import ApiError
from llamaport.compat.history import ready_history
from llamaport.compat.openai.items import normalize_items
from llamaport.compat.openai.protocol import ConversationBody, ItemsBody, decode
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import json_response
from llamaport.storage.conversations import ConversationRecord, ItemRecord, NewItem

__all__ = ["conversation_object", "item_list", "router"]

router = APIRouter(prefix="/v1/conversations")

MAX_ITEMS_PER_CALL = 20
"""OpenAI's limit on items added (or given at creation) at once."""
_METADATA_KEYS = 16


def conversation_object(record: ConversationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "conversation",
        "created_at": record.created_at,
        "metadata": record.metadata,
        "title": record.title,
        "item_count": record.item_count,
        "updated_at": record.updated_at,
    }


def item_list(items: list[ItemRecord], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [item.data for item in items],
        "first_id": items[0].id if items else "",
        "last_id": items[-1].id if items else "",
        "has_more": has_more,
    }


def metadata(value: Any) -> dict[str, str]:
    """OpenAI's metadata: at most 16 string pairs, keys up to 64, values up to 512 chars."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid type for 'metadata': expected an object.", "metadata")
    if len(value) > _METADATA_KEYS:
        raise ApiError(
            400, f"Invalid 'metadata': too many properties (at most {_METADATA_KEYS}).", "metadata"
        )
    for key, item in value.items():
        if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
            raise ApiError(
                400,
                f"Invalid 'metadata.{key}': keys are strings of at most 64 characters "
                "and values strings of at most 512.",
                f"metadata.{key}",
            )
    return dict(value)


def _new_items(raw: Any, param: str) -> list[NewItem]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, f"Invalid type for '{param}': expected an array of items.", param)
    items = normalize_items(raw, param)
    if len(items) > MAX_ITEMS_PER_CALL:
        raise ApiError(
            400,
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS_PER_CALL}, but got an array with length {len(items)} instead.",
            param,
        )
    return [NewItem(item) for item in items]


@router.post("", openapi_extra=json_body(ConversationBody))
async def create_conversation(request: Request) -> Response:
    body = decode(ConversationBody, await request.body())
    meta = metadata(body.metadata)
    items = _new_items(body.items, "items")
    history = await ready_history(request)
    record, _ = await history.call(history.store.create_conversation, meta, items)
    return json_response(conversation_object(record))


@router.get("")
async def list_conversations(request: Request) -> Response:
    history = await ready_history(request)
    records = await history.call(history.store.list_conversations)
    return json_response({"object": "list", "data": [conversation_object(r) for r in records]})


@router.get("/{conversation_id}")
async def retrieve_conversation(request: Request, conversation_id: str) -> Response:
    history = await ready_history(request)
    record = await history.call(history.store.get_conversation, conversation_id)
    return json_response(conversation_object(record))


@router.post("/{conversation_id}", openapi_extra=json_body(ConversationBody))
async def update_conversation(request: Request, conversation_id: str) -> Response:
    body = decode(ConversationBody, await request.body())
    if body.metadata is None:
        raise ApiError(400, "Missing required parameter: 'metadata'.", "metadata")
    history = await ready_history(request)
    meta = metadata(body.metadata)
    record = await history.call(history.store.update_conversation, conversation_id, meta)
    return json_response(conversation_object(record))


@router.delete("/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> Response:
    history = await ready_history(request)
    async with history.locked(conversation_id):
        await history.call(history.store.delete_conversation, conversation_id)
        await service_of(request).forget(conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(
            400, f"Invalid 'limit': expected an integer between 1 and 100, got {raw}.", "limit"
        )
    return limit


def _order(request: Request) -> Literal["asc", "desc"]:
    raw = request.query_params.get("order", "desc")
    if raw == "asc":
        return "asc"
    if raw == "desc":
        return "desc"
    raise ApiError(400, f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.", "order")


@router.get("/{conversation_id}/items")
async def list_items(request: Request, conversation_id: str) -> Response:
    """Newest first by default, as OpenAI; ``after`` is the last id of the previous page."""
    history = await ready_history(request)
    after = request.query_params.get("after") or None
    page = await history.call(
        history.store.list_items, conversation_id, _limit(request), _order(request), after
    )
    return json_response(item_list(page.items, page.has_more))


@router.post("/{conversation_id}/items", openapi_extra=json_body(ItemsBody))
async def create_items(request: Request, conversation_id: str) -> Response:
    body = decode(ItemsBody, await request.body())
    if body.items is None:
        raise ApiError(400, "Missing required parameter: 'items'.", "items")
    items = _new_items(body.items, "items")
    history = await ready_history(request)
    async with history.locked(conversation_id):
        added = await history.call(history.store.add_items, conversation_id, items)
    return json_response(item_list(added, False))


@router.get("/{conversation_id}/items/{item_id}")
async def retrieve_item(request: Request, conversation_id: str, item_id: str) -> Response:
    history = await ready_history(request)
    item = await history.call(history.store.get_item, conversation_id, item_id)
    return json_response(item.data)


@router.delete("/{conversation_id}/items/{item_id}")
async def delete_item(request: Request, conversation_id: str, item_id: str) -> Response:
    """OpenAI answers with the conversation the item was removed from."""
    history = await ready_history(request)
    async with history.locked(conversation_id):
        record = await history.call(history.store.delete_item, conversation_id, item_id)
        await service_of(request).forget(conversation_id)  # its KV file holds the item's text
    return json_response(conversation_object(record))
