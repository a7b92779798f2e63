"""The proxy's configuration: the TOML file's shape, validated once at start.

``[[upstream]]`` tables name existing engines (any ``/v1`` server, or an
Ollama/llamaport native API); ``[[route]]`` tables send a model name along an
ordered chain of them, ``"local"`` being this server's own runtime. A bad
file raises :class:`ConfigError` naming the key (and the line, for a TOML
syntax error); ``serve`` prints it and exits non-zero.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llamaport.runtime.errors import LlamaportError

__all__ = [
    "LOCAL",
    "Balance",
    "ConfigError",
    "ProxyConfig",
    "RouteConfig",
    "UpstreamConfig",
    "load_config",
]

LOCAL = "local"
"""The reserved upstream name of the embedded runtime."""

Balance = Literal["least_outstanding", "conversation_affinity", "first"]


class ConfigError(LlamaportError):
    """The proxy configuration file cannot be used; the message names the key."""


class UpstreamConfig(BaseModel):
    """One existing engine llamaport forwards to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["openai", "ollama"]
    url: str
    api_key_env: str | None = None
    models: list[str] | None = None
    """None: discovered from the upstream's model list."""
    max_concurrency: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == LOCAL:
            raise ValueError(f'"{LOCAL}" is reserved for the embedded runtime')
        return value

    @property
    def base_url(self) -> str:
        """The URL requests go to: for kind openai, ending in ``/v1``."""
        if self.kind == "openai" and not self.url.endswith("/v1"):
            return self.url + "/v1"
        return self.url


class RouteConfig(BaseModel):
    """A model name clients use, and the chain of upstreams that serve it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    upstreams: list[str] = Field(min_length=1)
    upstream_model: str | None = None
    balance: Balance = "least_outstanding"


class ProxyConfig(BaseModel):
    """The whole file; an empty one routes nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: list[UpstreamConfig] = Field(default_factory=list)
    route: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ProxyConfig:
        names: set[str] = set()
        for i, up in enumerate(self.upstream):
            if up.name in names:
                raise ValueError(f'upstream[{i}].name: duplicate upstream name "{up.name}"')
            names.add(up.name)
        models: set[str] = set()
        for i, route in enumerate(self.route):
            if route.model in models:
                raise ValueError(f'route[{i}].model: duplicate route for "{route.model}"')
            models.add(route.model)
            for j, name in enumerate(route.upstreams):
                if name != LOCAL and name not in names:
                    raise ValueError(f'route[{i}].upstreams[{j}]: unknown upstream "{name}"')
        return self


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_config(path: Path | None) -> ProxyConfig | None:
    """The configuration at ``path``, or None when there is no file (local only)."""
    if path is None or not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        return ProxyConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(tuple(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
