"""The database's tables (SQLModel): conversations, items, responses, schema versions.

Items are kept in OpenAI's item shape (a JSON object: ``message``,
``function_call``, ``function_call_output``, ``reasoning``) plus the columns
the queries need: order (``seq``), type, role, status, model and token counts.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

__all__ = ["ConversationRow", "ItemRow", "ResponseRow", "SchemaVersion"]


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
