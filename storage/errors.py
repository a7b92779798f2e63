"""Typed errors raised by the model store.

Each names a condition found in the store, never an HTTP status:
``llamaport.compat.errors`` alone maps them (by MRO) onto statuses and the
error envelope. Callers must not match on message text; the messages are
fixed only because Ollama clients show them verbatim.

Exception tree::

    StorageError
    ├── InvalidModelName      "invalid model name"
    ├── ModelNotFound         .name is the string the client sent
    ├── InvalidDigest         "invalid digest format"
    ├── DigestMismatch        content does not hash to the digest it claims
    ├── InvalidGGUF           "not a valid GGUF file"
    ├── BlobNotFound          a request names a blob the store does not have
    ├── CreateError           a create request cannot become a model (the message says why)
    ├── BlobTooLarge          an upload passes LLAMAPORT_MAX_BLOB_BYTES
    ├── InsufficientStorage   an upload does not fit on the disk (checked before writing)
    ├── CorruptModel          a stored model is unusable (blob missing or damaged, bad JSON)
    ├── ConversationStoreUnavailable  the conversation database cannot be opened
    ├── ConversationNotFound  .id names a conversation the database does not hold
    ├── ItemNotFound          .id names an item its conversation does not hold
    └── ResponseNotFound      .id names a response that was never stored (or was deleted)
"""

from __future__ import annotations

__all__ = [
    "BlobNotFound",
    "BlobTooLarge",
    "ConversationNotFound",
    "ConversationStoreUnavailable",
    "CorruptModel",
    "CreateError",
    "DigestMismatch",
    "InsufficientStorage",
    "InvalidDigest",
    "InvalidGGUF",
    "InvalidModelName",
    "ItemNotFound",
    "ModelNotFound",
    "ResponseNotFound",
    "StorageError",
]


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class InvalidModelName(StorageError):
    """A name does not follow Ollama's grammar; nothing touched the disk.

    ``name`` keeps the offending text so a caller can build Ollama's
    field-specific messages (``source "x" is invalid``) without parsing ours.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        super().__init__("invalid model name")


class ModelNotFound(StorageError):
    """No manifest matches the name, even case-insensitively.

    ``name`` is the request string exactly as the client sent it, because
    Ollama echoes that (or its normalised form, which the caller can derive).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"model '{name}' not found")


class InvalidDigest(StorageError):
    """A digest is not ``sha256:<64 hex>``; it was refused before becoming a path."""

    def __init__(self, digest: str = "") -> None:
        self.digest = digest
        super().__init__("invalid digest format")


class DigestMismatch(StorageError):
    """Content did not hash to the digest the client promised; it was discarded.

    Both digests are in ``sha256:<hex>`` form.
    """

    def __init__(self, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f'digest mismatch, expected "{expected}", got "{got}"')


class InvalidGGUF(StorageError):
    """A file is not a readable GGUF (bad magic, truncated, absurd counts).

    The message is Ollama's fixed text; ``detail`` says what was wrong, for
    logs only.
    """

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__("not a valid GGUF file")


class CorruptModel(StorageError):
    """A stored model cannot be used as it is on disk; the message says why."""


class BlobNotFound(StorageError):
    """A request refers to a blob that was never uploaded (or was collected)."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f'blob "{digest}" not found')


class BlobTooLarge(StorageError):
    """An upload is (or grew) larger than the blob limit; nothing of it is kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"blob too large: the limit is {limit} bytes (LLAMAPORT_MAX_BLOB_BYTES)")


class InsufficientStorage(StorageError):
    """An upload does not fit in the free space of the models directory; nothing
    of it is kept. ``needed`` is None when the disk filled during the write."""

    def __init__(self, free: int, needed: int | None = None) -> None:
        self.free = free
        self.needed = needed
        detail = f"the blob is {needed} bytes, " if needed is not None else ""
        super().__init__(
            f"not enough disk space for the blob: {detail}{free} bytes are free "
            "in the models directory"
        )


class CreateError(StorageError):
    """A create request cannot be turned into a model: a bad file path, an
    unknown parameter, an adapter that does not fit the base, an unsupported
    quantization. Nothing was written when this is raised."""


class ConversationStoreUnavailable(StorageError):
    """The conversation database could not be opened; every use of it gets this,
    while the rest of the server goes on."""

    def __init__(self, path: object, cause: Exception) -> None:
        super().__init__(f"the conversation database {path} cannot be opened: {cause}")


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
