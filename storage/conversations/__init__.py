"""Conversations, their items and stored responses in one SQLite file.

:class:`ConversationStore` (``repository.py``) is the only code that runs SQL
on it. Every method blocks; the server calls them off the event loop.
"""

from __future__ import annotations

from llamaport.storage.conversations.repository import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ConversationNotFound,
    ConversationRecord,
    ConversationStore,
    ItemNotFound,
    ItemPage,
    ItemRecord,
    NewItem,
    ResponseNotFound,
    ResponseRecord,
    new_id,
    new_item_id,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ConversationNotFound",
    "ConversationRecord",
    "ConversationStore",
    "ItemNotFound",
    "ItemPage",
    "ItemRecord",
    "NewItem",
    "ResponseNotFound",
    "ResponseRecord",
    "new_id",
    "new_item_id",
]
