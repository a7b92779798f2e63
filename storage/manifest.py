"""The manifest and config JSON that Ollama stores per model (Docker v2 schema 2).

Serialisation is byte-for-byte what Ollama's Go ``json.Marshal`` produces for
the same structs (compact, fields in struct order, empty optional fields left
out), so a manifest we write has the same digest Ollama would compute.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from llamaport.storage.errors import CorruptModel, InvalidDigest
from llamaport.storage.layout import digest_hex

__all__ = [
    "MEDIA_TYPE_ADAPTER",
    "MEDIA_TYPE_CONFIG",
    "MEDIA_TYPE_DRAFT",
    "MEDIA_TYPE_EMBED",
    "MEDIA_TYPE_JSON",
    "MEDIA_TYPE_LICENSE",
    "MEDIA_TYPE_MANIFEST",
    "MEDIA_TYPE_MESSAGES",
    "MEDIA_TYPE_MODEL",
    "MEDIA_TYPE_PARAMS",
    "MEDIA_TYPE_PROJECTOR",
    "MEDIA_TYPE_PROMPT",
    "MEDIA_TYPE_SYSTEM",
    "MEDIA_TYPE_TEMPLATE",
    "MEDIA_TYPE_TENSOR",
    "Layer",
    "Manifest",
    "ModelConfig",
    "go_platform",
]

MEDIA_TYPE_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_MODEL = "application/vnd.ollama.image.model"
MEDIA_TYPE_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_TYPE_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_TYPE_DRAFT = "application/vnd.ollama.image.draft"
MEDIA_TYPE_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_TYPE_PROMPT = "application/vnd.ollama.image.prompt"
"""Legacy alias of ``MEDIA_TYPE_TEMPLATE`` found in old manifests."""
MEDIA_TYPE_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_TYPE_PARAMS = "application/vnd.ollama.image.params"
MEDIA_TYPE_MESSAGES = "application/vnd.ollama.image.messages"
MEDIA_TYPE_LICENSE = "application/vnd.ollama.image.license"
MEDIA_TYPE_TENSOR = "application/vnd.ollama.image.tensor"
MEDIA_TYPE_JSON = "application/vnd.ollama.image.json"
MEDIA_TYPE_EMBED = "application/vnd.ollama.image.embed"
"""Deprecated; readers ignore it."""


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Layer:
    """One blob a manifest refers to. ``from_`` is the JSON ``from`` field."""

    media_type: str
    digest: str
    size: int
    from_: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Layer:
        """Build from parsed JSON; raises ``CorruptModel`` on a wrong shape or digest."""
        if not isinstance(data, dict):
            raise CorruptModel("invalid manifest: layer is not an object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        from_, name = data.get("from"), data.get("name")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise CorruptModel("invalid manifest: layer lacks mediaType or digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CorruptModel(f"invalid manifest: layer {digest} has a bad size")
        if not isinstance(from_, str | None) or not isinstance(name, str | None):
            raise CorruptModel(f"invalid manifest: layer {digest} has a bad from/name")
        try:
            digest_hex(digest)
        except InvalidDigest:
            raise CorruptModel(f"invalid manifest: bad digest {digest!r}") from None
        return cls(media_type=media_type, digest=digest, size=size, from_=from_, name=name)


@dataclass(frozen=True)
class Manifest:
    """A model's manifest: a config blob plus an ordered list of layers."""

    config: Layer
    layers: list[Layer]
    schema_version: int = 2
    media_type: str = MEDIA_TYPE_MANIFEST

    @property
    def size(self) -> int:
        """Sum of layer sizes plus the config size, as ``/api/tags`` reports."""
        return self.config.size + sum(layer.size for layer in self.layers)

    def all_layers(self) -> list[Layer]:
        """Config first, then the layers: every blob this manifest needs."""
        return [self.config, *self.layers]

    def layers_of(self, *media_types: str) -> list[Layer]:
        """The layers with any of these media types, in manifest order."""
        return [layer for layer in self.layers if layer.media_type in media_types]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": self.schema_version,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self) -> bytes:
        """The exact bytes written to ``manifests/...``; their sha256 is the model digest."""
        return _compact(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        """Parse manifest bytes; raises ``CorruptModel`` if they are not a valid manifest."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptModel(f"invalid manifest: {exc}") from None
        if not isinstance(raw, dict):
            raise CorruptModel("invalid manifest: not a JSON object")
        version = raw.get("schemaVersion", 2)
        media_type = raw.get("mediaType", MEDIA_TYPE_MANIFEST)
        layers = raw.get("layers")
        layers = [] if layers is None else layers
        if not isinstance(version, int) or not isinstance(media_type, str):
            raise CorruptModel("invalid manifest: bad schemaVersion or mediaType")
        if not isinstance(layers, list):
            raise CorruptModel("invalid manifest: layers is not a list")
        return cls(
            config=Layer.from_dict(raw.get("config")),
            layers=[Layer.from_dict(item) for item in layers],
            schema_version=version,
            media_type=media_type,
        )


_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_GO_OS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}


def go_platform() -> tuple[str, str]:
    """This machine as Go's ``(GOARCH, GOOS)``, the values Ollama puts in configs."""
    machine = platform.machine().lower()
    return _GO_ARCH.get(machine, machine or "unknown"), _GO_OS.get(sys.platform, sys.platform)


@dataclass(frozen=True)
class ModelConfig:
    """The config blob (Ollama's ``ConfigV2``) for models this store creates.

    Field order is the Go struct's, which fixes the JSON bytes and so the
    config digest. Empty optional fields are omitted like Go's ``omitempty``.
    """

    model_family: str
    model_type: str
    file_type: str
    model_families: tuple[str, ...] = ()
    model_format: str = "gguf"
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    capabilities: tuple[str, ...] = ()
    context_length: int = 0
    embedding_length: int = 0
    base_name: str = ""
    architecture: str = field(default_factory=lambda: go_platform()[0])
    os: str = field(default_factory=lambda: go_platform()[1])

    def to_dict(self) -> dict[str, Any]:
        families = list(self.model_families) or [self.model_family]
        out: dict[str, Any] = {
            "model_format": self.model_format,
            "model_family": self.model_family,
            "model_families": families,
            "model_type": self.model_type,
            "file_type": self.file_type,
        }
        optional: list[tuple[str, Any]] = [
            ("renderer", self.renderer),
            ("parser", self.parser),
            ("requires", self.requires),
            ("capabilities", list(self.capabilities)),
            ("context_length", self.context_length),
            ("embedding_length", self.embedding_length),
            ("base_name", self.base_name),
        ]
        out.update((key, value) for key, value in optional if value)
        out["architecture"] = self.architecture
        out["os"] = self.os
        return out

    def to_json(self) -> bytes:
        return _compact(self.to_dict())
