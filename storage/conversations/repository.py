"""The repository: the only code that reads and writes conversations, items and responses.

Every method is one transaction and blocks; the server calls them off the
event loop. The file, its pragmas and migrations are :mod:`.db`'s, the
tables :mod:`.tables`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlmodel import Session, col, func, select

from llamaport.storage.conversations import db
from llamaport.storage.conversations.records import (
    ConversationRecord,
    ItemPage,
    ItemRecord,
    JSONObject,
    NewItem,
    ResponseRecord,
    conversation_record,
    item_record,
    new_id,
    new_item_id,
    response_record,
    title_of,
)
from llamaport.storage.conversations.tables import ConversationRow, ItemRow, ResponseRow
from llamaport.storage.errors import ConversationNotFound, ItemNotFound, ResponseNotFound

__all__ = ["ConversationStore"]


class ConversationStore:
    """The repository: conversations, items and responses, one transaction per call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine = db.open_database(path)

    def close(self) -> None:
        self.engine.dispose()

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return db.schema_version(conn)

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
            title=meta.get("title") or title_of(items or []),
            meta=json.dumps(meta),
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            added = self._append(session, row, items or [], now)
        return conversation_record(row, len(added)), added

    def get_conversation(self, conversation_id: str) -> ConversationRecord:
        with self._session() as session:
            row = self._conversation_row(session, conversation_id)
            return conversation_record(row, self._count(session, conversation_id))

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
            return conversation_record(row, self._count(session, conversation_id))

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
            return [
                conversation_record(row, count or 0) for row, count in session.exec(query).all()
            ]

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
                row.title = title_of(items)
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
        return [item_record(r) for r in rows]

    def get_item(self, conversation_id: str, item_id: str) -> ItemRecord:
        with self._session() as session:
            self._conversation_row(session, conversation_id)
            return item_record(self._item_row(session, conversation_id, item_id))

    def delete_item(self, conversation_id: str, item_id: str) -> ConversationRecord:
        with self._session() as session:
            conv = self._conversation_row(session, conversation_id)
            session.delete(self._item_row(session, conversation_id, item_id))
            session.flush()
            return conversation_record(conv, self._count(session, conversation_id))

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
        return ItemPage([item_record(r) for r in rows[:limit]], more)

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
                    conv.title = title_of(conversation_items)
                session.add(conv)
            session.add(row)

    def get_response(self, response_id: str) -> ResponseRecord:
        with self._session() as session:
            row = session.get(ResponseRow, response_id)
            if row is None:
                raise ResponseNotFound(response_id)
            return response_record(row)

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
                chain.append(response_record(row))
                cursor = row.previous_response_id
        items: list[JSONObject] = []
        for record in reversed(chain):
            items.extend(record.input_items)
            items.extend(record.body.get("output") or [])
        return items
