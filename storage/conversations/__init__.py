"""Conversations, their items and stored responses in one SQLite file.

:class:`ConversationStore` (``repository.py``) is the only code that reads
and writes it; ``db.py`` opens the file and migrates it, ``tables.py`` holds
the tables and ``records.py`` what the repository hands out. Every method
blocks; the server calls them off the event loop. The not-found errors live
in :mod:`llamaport.storage.errors` with the others and are re-exported here.
"""

from __future__ import annotations

from llamaport.storage.conversations.db import MIGRATIONS, SCHEMA_VERSION
from llamaport.storage.conversations.records import (
    ConversationRecord,
    ItemPage,
    ItemRecord,
    NewItem,
    ResponseRecord,
    new_id,
    new_item_id,
)
from llamaport.storage.conversations.repository import ConversationStore
from llamaport.storage.errors import ConversationNotFound, ItemNotFound, ResponseNotFound

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
