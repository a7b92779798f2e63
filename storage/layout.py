"""Where things live inside a store root, identical to Ollama's ``models`` dir.

::

    <root>/manifests/<host>/<namespace>/<model>/<tag>
    <root>/blobs/sha256-<64 lowercase hex>

A digest is checked against ``^sha256[:-][0-9a-fA-F]{64}$`` before it becomes
a path, and a :class:`Name` validates its parts when built, so nothing a
client sends can point outside the root. Hosts keep their ``:port`` on disk,
as Ollama does.
"""

from __future__ import annotations

import re
from pathlib import Path

from llamaport.storage.errors import InvalidDigest, InvalidModelName
from llamaport.storage.names import Name

__all__ = [
    "BLOBS_DIR",
    "MANIFESTS_DIR",
    "blob_path",
    "blobs_dir",
    "digest_hex",
    "manifest_path",
    "manifests_dir",
    "name_from_manifest_path",
    "normalize_digest",
]

MANIFESTS_DIR = "manifests"
BLOBS_DIR = "blobs"

_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")


def digest_hex(digest: str) -> str:
    """The 64 lowercase hex digits of ``sha256:<hex>`` or ``sha256-<hex>``.

    Raises ``InvalidDigest`` for any other shape.
    """
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InvalidDigest(digest)
    return match.group(1).lower()


def normalize_digest(digest: str) -> str:
    """The canonical ``sha256:<lowercase hex>`` form used in manifests."""
    return f"sha256:{digest_hex(digest)}"


def manifests_dir(root: Path) -> Path:
    """``<root>/manifests``: the only tree searched for model names."""
    return root / MANIFESTS_DIR


def blobs_dir(root: Path) -> Path:
    """``<root>/blobs``: content-addressed files; temp files for writes live here too."""
    return root / BLOBS_DIR


def manifest_path(root: Path, name: Name) -> Path:
    """``<root>/manifests/<host>/<namespace>/<model>/<tag>``, case as given."""
    return manifests_dir(root).joinpath(*name.parts())


def blob_path(root: Path, digest: str) -> Path:
    """``<root>/blobs/sha256-<hex>``; raises ``InvalidDigest`` first if malformed."""
    return blobs_dir(root) / f"sha256-{digest_hex(digest)}"


def name_from_manifest_path(root: Path, path: Path) -> Name | None:
    """The name a manifest file stands for, or None if it is not exactly 4 deep.

    Mirrors Ollama's ``ParseNameFromFilepath``: stray files and directories
    with invalid parts are ignored rather than reported, since a store can hold
    other tools' leftovers.
    """
    try:
        parts = path.relative_to(manifests_dir(root)).parts
    except ValueError:
        return None
    if len(parts) != 4:
        return None
    try:
        return Name(host=parts[0], namespace=parts[1], model=parts[2], tag=parts[3])
    except InvalidModelName:
        return None
