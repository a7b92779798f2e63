"""Conversations, their items and stored responses in one SQLite file.

:class:`~llamaport.storage.conversations.repository.ConversationStore` is the
only code that reads and writes it; ``db.py`` opens the file and migrates it,
``tables.py`` holds the tables and ``records.py`` what the repository hands
out. Every method blocks; the server calls them off the event loop. The
not-found errors live in :mod:`llamaport.storage.errors` with the others and
are re-exported here.

This package re-exports only the records, ids and errors, which import no
SQL: the server imports them at start-up and opens the store itself after it
listens (:mod:`llamaport.compat.history`), so SQLAlchemy and SQLModel stay
off its path to listening. Import ``ConversationStore`` from ``repository``
and ``MIGRATIONS``/``SCHEMA_VERSION`` from ``db``.
"""

from __future__ import annotations

from llamaport.storage.conversations.records import (
    ConversationRecord,
    ItemPage,
    ItemRecord,
    NewItem,
    ResponseRecord,
    new_id,
    new_item_id,
)
from llamaport.storage.errors import ConversationNotFound, ItemNotFound, ResponseNotFound

__all__ = [
    "ConversationNotFound",
    "ConversationRecord",
    "ItemNotFound",
    "ItemPage",
    "ItemRecord",
    "NewItem",
    "ResponseNotFound",
    "ResponseRecord",
    "new_id",
    "new_item_id",
]
