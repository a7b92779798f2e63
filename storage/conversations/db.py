"""The SQLite file: its engine, pragmas and versioned, forward-only migrations.

One database file, ``LLAMAPORT_HOME/llamaport.db``, in WAL mode with a busy
timeout and foreign keys on, so readers never wait for the writer, a second
writer waits instead of failing, and deleting a conversation deletes its
items (``ON DELETE CASCADE``). Every write is one transaction: a ``kill -9``
loses at most the turn in flight, never a committed one, and never corrupts
the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, create_engine

from llamaport.storage.conversations.tables import SchemaVersion
from llamaport.storage.errors import StorageError

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "SCHEMA_VERSION", "open_database", "schema_version"]

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another one before SQLite gives up."""


def _v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)


def _v2(conn: Connection) -> None:
    """Native tool results stored before schema 2 lost their call: tie each to its call.

    ``/api/chat`` stored a tool result without ``tool_call_id`` under a random
    call id and without its ``tool_name``. Each such output (no ``name``, and
    a call id no call of its conversation has) now answers the earliest
    earlier call of its conversation that nothing answered yet, taking that
    call's id and name. Outputs with no such call stay as they are.
    """
    rows = conn.execute(
        text(
            "SELECT seq, conversation_id, data FROM items "
            "WHERE type IN ('function_call', 'function_call_output') ORDER BY seq"
        )
    ).all()
    known: dict[str, set[Any]] = {}
    for _, conversation, data in rows:
        item = json.loads(data)
        if item.get("type") == "function_call":
            known.setdefault(conversation, set()).add(item.get("call_id"))
    waiting: dict[str, list[dict[str, Any]]] = {}
    for seq, conversation, data in rows:
        item, calls = json.loads(data), waiting.setdefault(conversation, [])
        if item.get("type") == "function_call":
            calls.append(item)
            continue
        call_id = item.get("call_id")
        answered = next((c for c in calls if c.get("call_id") == call_id), None)
        lost = "name" not in item and call_id not in known.get(conversation, set())
        if answered is None and lost and calls:
            answered = calls[0]
            item.update(call_id=answered.get("call_id"), name=answered.get("name"))
            conn.execute(
                text("UPDATE items SET data = :data WHERE seq = :seq"),
                {"data": json.dumps(item, ensure_ascii=False), "seq": seq},
            )
        if answered is not None:
            calls.remove(answered)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2]
"""``MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``; append only."""
SCHEMA_VERSION = len(MIGRATIONS)


def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_VERSIONS = SQLModel.metadata.tables[str(SchemaVersion.__tablename__)]


def schema_version(conn: Connection) -> int:
    return int(conn.execute(select(func.max(_VERSIONS.c.version))).scalar() or 0)


def open_database(path: Path) -> Engine:
    """The engine for ``path``, its schema migrated to :data:`SCHEMA_VERSION`.

    Each step commits together with its version row, so a crash leaves the
    file at a whole version. A file from a newer llamaport is refused.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _pragmas)
    SQLModel.metadata.create_all(engine, tables=[_VERSIONS])
    latest = len(MIGRATIONS)
    with engine.begin() as conn:
        current = schema_version(conn)
    if current > latest:
        engine.dispose()
        raise StorageError(
            f"{path} has schema version {current}; this llamaport knows up to {latest}"
        )
    for version in range(current, latest):
        with engine.begin() as conn:
            MIGRATIONS[version](conn)
            conn.execute(
                _VERSIONS.insert().values(version=version + 1, applied_at=int(time.time()))
            )
    return engine
