"""Conversations, their items and stored responses, in SQLite through SQLModel.

One database file, ``LLAMAPORT_HOME/llamaport.db``, in WAL mode with a busy
timeout and foreign keys on, so readers never wait for the writer, a second
writer waits instead of failing, and deleting a conversation deletes its
items (``ON DELETE CASCADE``). Every write is one transaction: a ``kill -9``
loses at most the turn in flight, never a committed one, and never corrupts
the file.

Items are kept in OpenAI's item shape (a JSON object: ``message``,
``function_call``, ``function_call_output``, ``reasoning``) plus the columns
the queries need: order (``seq``), type, role, status, model and token counts.
The schema has a version and forward migrations (:data:`MIGRATIONS`).

Every method here blocks; the server calls them off the event loop.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Column, ForeignKey, Index, String, event
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select

from llamaport.storage.errors import StorageError

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

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another one before SQLite gives up."""

JSONObject = dict[str, Any]


def new_id(prefix: str) -> str:
    """An OpenAI-style id: ``conv_``, ``msg_``, ``fc_``, ``resp_`` ... and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


class ConversationNotFound(StorageError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"Conversation with id '{conversation_id}' not found.")
        self.id = conversation_id


class ItemNotFound(StorageError):
    def __init__(self, item_id: str) -> None:
        super().__init__(f"Item with id '{item_id}' not found.")
        self.id = item_id


class ResponseNotFound(StorageError):
    def __init__(self, response_id: str) -> None:
        super().__init__(f"Response with id '{response_id}' not found.")
        self.id = response_id


# -- tables --------------------------------------------------------------------------


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: int


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    id: str = Field(primary_key=True)
    created_at: int
    updated_at: int
    title: str = ""
    meta: str = "{}"
    """``metadata`` as JSON text (``metadata`` is reserved by SQLAlchemy)."""


class ItemRow(SQLModel, table=True):
    __tablename__ = "items"
    __table_args__ = (Index("items_by_conversation", "conversation_id", "seq"),)
    seq: int | None = Field(default=None, primary_key=True)
    """Insertion order across the whole database; items of a conversation sort by it."""
    id: str = Field(sa_column=Column(String, unique=True, nullable=False))
    conversation_id: str = Field(
        sa_column=Column(String, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    )
    type: str
    role: str | None = None
    status: str = "completed"
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    created_at: int
    data: str
    """The item in OpenAI's shape, as JSON text."""


class ResponseRow(SQLModel, table=True):
    __tablename__ = "responses"
    id: str = Field(primary_key=True)
    created_at: int
    previous_response_id: str | None = Field(default=None, index=True)
    conversation_id: str | None = None
    status: str
    input_items: str
    """The items this response added (its input), as a JSON array."""
    body: str
    """The response object as returned, as JSON text (its ``output`` included)."""


# -- migrations ----------------------------------------------------------------------


def _v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1]
"""``MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``; append only."""
SCHEMA_VERSION = len(MIGRATIONS)


def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# -- records -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    created_at: int
    updated_at: int
    title: str
    metadata: dict[str, str]
    item_count: int = 0


@dataclass(frozen=True)
class ItemRecord:
    id: str
    conversation_id: str
    type: str
    role: str | None
    status: str
    model: str | None
    input_tokens: int
    output_tokens: int
    created_at: int
    data: JSONObject
    """The item in OpenAI's shape, with its ``id`` and ``status``."""


@dataclass(frozen=True)
class ItemPage:
    items: list[ItemRecord]
    has_more: bool


@dataclass(frozen=True)
class ResponseRecord:
    id: str
    created_at: int
    previous_response_id: str | None
    conversation_id: str | None
    status: str
    input_items: list[JSONObject]
    body: JSONObject


@dataclass(frozen=True)
class NewItem:
    """An item to append: OpenAI's shape plus what the columns record."""

    data: JSONObject
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


def _conversation(row: ConversationRow, count: int = 0) -> ConversationRecord:
    return ConversationRecord(
        row.id, row.created_at, row.updated_at, row.title, json.loads(row.meta), count
    )


def _item(row: ItemRow) -> ItemRecord:
    return ItemRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        type=row.type,
        role=row.role,
        status=row.status,
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        created_at=row.created_at,
        data=json.loads(row.data),
    )


def _response(row: ResponseRow) -> ResponseRecord:
    return ResponseRecord(
        id=row.id,
        created_at=row.created_at,
        previous_response_id=row.previous_response_id,
        conversation_id=row.conversation_id,
        status=row.status,
        input_items=json.loads(row.input_items),
        body=json.loads(row.body),
    )


_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


def new_item_id(kind: str) -> str:
    """A fresh id for an item of ``kind`` (``msg_``, ``fc_``, ``fco_``, ``rs_``)."""
    return new_id(_ID_PREFIX.get(kind, "item"))


def _title(items: list[NewItem]) -> str:
    """The first user text, cut to one line of 80 characters."""
    for item in items:
        data = item.data
        if data.get("type") == "message" and data.get("role") == "user":
            for part in data.get("content") or []:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str) and text.strip():
                    line = " ".join(text.split())
                    return line if len(line) <= 80 else line[:79] + "…"
    return ""


# -- the repository ------------------------------------------------------------------


class ConversationStore:
    """The repository: conversations, items and responses, one transaction per call."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(self.engine, "connect", _pragmas)
        self._migrate()

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self) -> None:
        SQLModel.metadata.create_all(
            self.engine, tables=[SQLModel.metadata.tables[str(SchemaVersion.__tablename__)]]
        )
        latest = len(MIGRATIONS)
        with self._session() as session:
            current = session.exec(select(func.max(SchemaVersion.version))).one() or 0
            if current > latest:
                raise StorageError(
                    f"{self.path} has schema version {current}; this llamaport knows up to {latest}"
                )
        versions = SQLModel.metadata.tables[str(SchemaVersion.__tablename__)]
        for version in range(current, latest):
            with self.engine.begin() as conn:  # a step and its version row commit together
                MIGRATIONS[version](conn)
                conn.execute(
                    versions.insert().values(version=version + 1, applied_at=int(time.time()))
                )

    def schema_version(self) -> int:
        with self._session() as session:
            return session.exec(select(func.max(SchemaVersion.version))).one() or 0

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    # -- conversations --------------------------------------------------------------

    def create_conversation(
        self, metadata: dict[str, str] | None = None, items: list[NewItem] | None = None
    ) -> tuple[ConversationRecord, list[ItemRecord]]:
        now = int(time.time())
        meta = dict(metadata or {})
        row = ConversationRow(
            id=new_id("conv"),
            created_at=now,
            updated_at=now,
            title=meta.get("title") or _title(items or []),
            meta=json.dumps(meta),
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            added = self._append(session, row, items or [], now)
        return _conversation(row, len(added)), added

    def get_conversation(self, conversation_id: str) -> ConversationRecord:
        with self._session() as session:
            row = self._conversation_row(session, conversation_id)
            return _conversation(row, self._count(session, conversation_id))

    def update_conversation(
        self, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRecord:
        with self._session() as session:
            row = self._conversation_row(session, conversation_id)
            row.meta = json.dumps(metadata)
            if metadata.get("title"):
                row.title = metadata["title"]
            row.updated_at = int(time.time())
            session.add(row)
            return _conversation(row, self._count(session, conversation_id))

    def delete_conversation(self, conversation_id: str) -> None:
        with self._session() as session:
            session.delete(self._conversation_row(session, conversation_id))

    def list_conversations(self) -> list[ConversationRecord]:
        """Every conversation, the most recently updated first, with its item count."""
        counts = (
            select(col(ItemRow.conversation_id), func.count())
            .group_by(col(ItemRow.conversation_id))
            .subquery()
        )
        query = (
            select(ConversationRow, counts.c[1])
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .order_by(col(ConversationRow.updated_at).desc(), col(ConversationRow.id))
        )
        with self._session() as session:
            return [_conversation(row, count or 0) for row, count in session.exec(query).all()]

    @staticmethod
    def _conversation_row(session: Session, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None:
            raise ConversationNotFound(conversation_id)
        return row

    @staticmethod
    def _count(session: Session, conversation_id: str) -> int:
        query = select(func.count()).where(ItemRow.conversation_id == conversation_id)
        return session.exec(query).one()

    # -- items ----------------------------------------------------------------------

    def add_items(self, conversation_id: str, items: list[NewItem]) -> list[ItemRecord]:
        """Append ``items`` in order, in one transaction (a turn is never half stored)."""
        now = int(time.time())
        with self._session() as session:
            row = self._conversation_row(session, conversation_id)
            added = self._append(session, row, items, now)
            row.updated_at = now
            if not row.title:
                row.title = _title(items)
            session.add(row)
            return added

    @staticmethod
    def _append(
        session: Session, conv: ConversationRow, items: list[NewItem], now: int
    ) -> list[ItemRecord]:
        rows = []
        for item in items:
            data = dict(item.data)
            kind = str(data.get("type", "message"))
            data.setdefault("id", new_item_id(kind))
            data.setdefault("status", "completed")
            row = ItemRow(
                id=data["id"],
                conversation_id=conv.id,
                type=kind,
                role=data.get("role"),
                status=data["status"],
                model=item.model,
                input_tokens=item.input_tokens,
                output_tokens=item.output_tokens,
                created_at=now,
                data=json.dumps(data, ensure_ascii=False),
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return [_item(r) for r in rows]

    def get_item(self, conversation_id: str, item_id: str) -> ItemRecord:
        with self._session() as session:
            self._conversation_row(session, conversation_id)
            return _item(self._item_row(session, conversation_id, item_id))

    def delete_item(self, conversation_id: str, item_id: str) -> ConversationRecord:
        with self._session() as session:
            conv = self._conversation_row(session, conversation_id)
            session.delete(self._item_row(session, conversation_id, item_id))
            session.flush()
            return _conversation(conv, self._count(session, conversation_id))

    @staticmethod
    def _item_row(session: Session, conversation_id: str, item_id: str) -> ItemRow:
        query = select(ItemRow).where(
            ItemRow.id == item_id, ItemRow.conversation_id == conversation_id
        )
        row = session.exec(query).first()
        if row is None:
            raise ItemNotFound(item_id)
        return row

    def list_items(
        self,
        conversation_id: str,
        limit: int | None = None,
        order: Literal["asc", "desc"] = "asc",
        after: str | None = None,
    ) -> ItemPage:
        """Items in ``order``; ``after`` is an item id (exclusive); ``limit=None`` is all."""
        with self._session() as session:
            self._conversation_row(session, conversation_id)
            query = select(ItemRow).where(ItemRow.conversation_id == conversation_id)
            if after is not None:
                cursor = self._item_row(session, conversation_id, after).seq
                newer = col(ItemRow.seq) > cursor if order == "asc" else col(ItemRow.seq) < cursor
                query = query.where(newer)
            seq = col(ItemRow.seq)
            query = query.order_by(seq.asc() if order == "asc" else seq.desc())
            if limit is not None:
                query = query.limit(limit + 1)
            rows = list(session.exec(query).all())
        more = limit is not None and len(rows) > limit
        return ItemPage([_item(r) for r in rows[:limit]], more)

    # -- responses ------------------------------------------------------------------

    def save_response(
        self,
        body: JSONObject,
        input_items: list[JSONObject],
        conversation_items: list[NewItem] | None = None,
    ) -> None:
        """Store a response, and (with a conversation) its turn's items, atomically."""
        conv_field = body.get("conversation")
        conversation_id = conv_field.get("id") if isinstance(conv_field, dict) else None
        row = ResponseRow(
            id=body["id"],
            created_at=int(body["created_at"]),
            previous_response_id=body.get("previous_response_id"),
            conversation_id=conversation_id,
            status=body.get("status") or "completed",
            input_items=json.dumps(input_items, ensure_ascii=False),
            body=json.dumps(body, ensure_ascii=False),
        )
        now = int(time.time())
        with self._session() as session:
            if conversation_id is not None and conversation_items is not None:
                conv = self._conversation_row(session, conversation_id)
                self._append(session, conv, conversation_items, now)
                conv.updated_at = now
                if not conv.title:
                    conv.title = _title(conversation_items)
                session.add(conv)
            session.add(row)

    def get_response(self, response_id: str) -> ResponseRecord:
        with self._session() as session:
            row = session.get(ResponseRow, response_id)
            if row is None:
                raise ResponseNotFound(response_id)
            return _response(row)

    def delete_response(self, response_id: str) -> None:
        with self._session() as session:
            row = session.get(ResponseRow, response_id)
            if row is None:
                raise ResponseNotFound(response_id)
            session.delete(row)

    def response_chain(self, response_id: str) -> list[JSONObject]:
        """Every input and output item from the first response up to ``response_id``."""
        chain: list[ResponseRecord] = []
        seen: set[str] = set()
        cursor: str | None = response_id
        with self._session() as session:
            while cursor is not None and cursor not in seen:
                seen.add(cursor)
                row = session.get(ResponseRow, cursor)
                if row is None:
                    if not chain:
                        raise ResponseNotFound(cursor)
                    break
                chain.append(_response(row))
                cursor = row.previous_response_id
        items: list[JSONObject] = []
        for record in reversed(chain):
            items.extend(record.input_items)
            items.extend(record.body.get("output") or [])
        return items
