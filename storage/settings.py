"""The only code that reads the environment.

Every setting comes from a ``LLAMAPORT_*`` variable and falls back to its
``OLLAMA_*`` twin where Ollama has one. Values are trimmed of surrounding
spaces and quotes, as Ollama's ``envconfig.Var`` does. Call
:func:`load_settings` once at start-up and pass the result down; nothing else
may call ``os.environ``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_PORT",
    "FOREVER",
    "Host",
    "Settings",
    "load_settings",
    "parse_bool",
    "parse_duration",
    "parse_host",
    "parse_keep_alive_env",
    "parse_registry_auth",
    "read_secret",
]

DEFAULT_PORT = 11434
FOREVER = math.inf
"""A keep-alive of this many seconds never expires."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Parse a Go ``time.ParseDuration`` string into seconds.

    Raises ``ValueError`` with Go's own wording (``time: missing unit in
    duration "-1"``) so callers can pass the message straight to a client.
    """
    original = text
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            if re.fullmatch(r"\d+(?:\.\d*)?", text[pos:]):
                raise ValueError(f'time: missing unit in duration "{original}"')
            raise ValueError(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_keep_alive_env(text: str) -> float:
    """Parse ``LLAMAPORT_KEEP_ALIVE``: a Go duration or whole seconds.

    Negative means forever (``FOREVER``). Unparsable values fall back to five
    minutes, as Ollama's ``TestKeepAlive`` pins.
    """
    try:
        seconds = float(int(text))
    except ValueError:
        try:
            seconds = parse_duration(text)
        except ValueError:
            return 300.0
    return FOREVER if seconds < 0 else seconds


def parse_bool(text: str) -> bool:
    """Go ``strconv.ParseBool`` semantics, where unparsable non-empty means true."""
    lowered = text.lower()
    if lowered in ("0", "f", "false"):
        return False
    return bool(text)


@dataclass(frozen=True)
class Host:
    """Where the server listens and where the CLI connects.

    An empty ``host`` (from ``:PORT``) means every interface when serving and
    the local machine when connecting, as Go's ``net.Listen``/``Dial`` read it.
    """

    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def url(self) -> str:
        host = self.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def bind_host(self) -> str:
        return self.host or "0.0.0.0"

    @property
    def is_loopback(self) -> bool:
        host = self.host or "127.0.0.1"
        return host in ("localhost", "::1") or host.startswith("127.")


def _port(text: str, default: int) -> int:
    try:
        port = int(text)
    except ValueError:
        return default
    return port if 0 <= port <= 65535 else default


def parse_host(text: str) -> Host:
    """Parse ``OLLAMA_HOST`` forms: ``host``, ``:port``, ``host:port``, ``[v6]:port``,
    a bare IPv6 address, and ``scheme://host[:port][/path]``."""
    text = text.strip().strip("\"'").strip()
    if not text:
        return Host(scheme="http", host="127.0.0.1", port=DEFAULT_PORT)
    scheme, default_port = "http", DEFAULT_PORT
    if "://" in text:
        scheme, _, text = text.partition("://")
        default_port = 443 if scheme == "https" else 80
    text, slash, path = text.partition("/")
    path = (slash + path).rstrip("/")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = _port(rest[1:], default_port) if rest.startswith(":") else default_port
    elif text.count(":") == 1:
        host, _, raw_port = text.partition(":")
        port = _port(raw_port, default_port)
    else:
        host, port = text, default_port
    return Host(scheme=scheme, host=host, port=port, path=path)


def _read(env: dict[str, str], name: str, twin: bool = True) -> str:
    for key in (f"LLAMAPORT_{name}", f"OLLAMA_{name}" if twin else ""):
        if key and key in env:
            value = env[key].strip().strip("\"'").strip()
            if value:
                return value
    return ""


def _int(env: dict[str, str], name: str, default: int, twin: bool = True) -> int:
    raw = _read(env, name, twin)
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """Every tunable of the server and the CLI, resolved once."""

    host: Host = field(default_factory=lambda: parse_host(""))
    home: Path = field(default_factory=lambda: Path.home() / ".llamaport")
    models: Path = field(default_factory=lambda: Path.home() / ".llamaport" / "models")
    keep_alive: float = 300.0
    context_length: int = 4096
    num_parallel: int = 4
    max_loaded_models: int = 3
    max_queue: int = 512
    load_timeout: float = 300.0
    num_thread: int = 0
    origins: tuple[str, ...] = ()
    noprune: bool = False
    nohistory: bool = False
    debug: bool = False
    flash_attention: bool | None = None
    no_gpu: bool = False
    """Load every layer on the CPU: ``LLAMAPORT_NO_GPU`` (``OLLAMA_NO_GPU``), or
    ``CUDA_VISIBLE_DEVICES`` set to nothing, as the tutorials use to force CPU."""
    kv_cache_type: str = "f16"
    preload: tuple[str, ...] = ()
    """``LLAMAPORT_PRELOAD``: models (comma-separated) loaded in the background as
    ``serve`` starts, so their first request skips the load (no Ollama twin)."""
    cache_ram: int = 2048
    """``LLAMAPORT_CACHE_RAM``: MiB of host memory per loaded model for the KV state
    of sequences evicted from their slots (0 turns the cache off; Ollama has none)."""
    cache_disk: int = 4096
    """``LLAMAPORT_CACHE_DISK``: MiB of disk under ``home/kv`` for the last KV state of
    stored conversations, shared by every model, least recently used files dropped
    first (0 turns it off; Ollama has none)."""
    registry_auth: tuple[str, str] | None = None
    """``LLAMAPORT_REGISTRY_AUTH`` as ``(user, password)``: basic auth for registries."""
    hf_endpoint: str = "https://huggingface.co"
    """``HF_ENDPOINT``, as huggingface_hub reads it, passed to it explicitly."""
    hf_token: str | None = None
    """``HF_TOKEN`` for gated or private Hugging Face repositories."""
    max_request_bytes: int = 64 * 1024 * 1024
    """Larger JSON request bodies get a 413 (``LLAMAPORT_MAX_REQUEST_BYTES``)."""
    max_blob_bytes: int = 0
    """Larger blob uploads get a 413 (``LLAMAPORT_MAX_BLOB_BYTES``); 0 means no limit
    beyond the free disk space, which is checked before writing."""
    shutdown_grace: float = 10.0
    """Seconds running requests get to finish after SIGTERM/SIGINT before their
    streams are ended with an error (``LLAMAPORT_SHUTDOWN_GRACE``: seconds or a
    Go duration)."""
    api_key: str = ""
    """When set, every route but ``/`` wants ``Authorization: Bearer <key>``
    (``LLAMAPORT_API_KEY``; Ollama has no such setting)."""
    config: Path | None = None
    """The proxy's TOML file (``LLAMAPORT_CONFIG``, else ``home/config.toml``);
    ``None`` or a missing file means local models only."""

    @property
    def history_file(self) -> Path:
        return self.home / "history"

    @property
    def database(self) -> Path:
        """Conversations, their items and stored responses (SQLite)."""
        return self.home / "llamaport.db"

    @property
    def kv_dir(self) -> Path:
        """Stored conversations' KV state files, one folder per engine state format."""
        return self.home / "kv"

    @property
    def server_log(self) -> Path:
        return self.home / "server.log"


def parse_registry_auth(text: str) -> tuple[str, str] | None:
    """``user:password`` (split at the first ``:``) or None when empty or malformed."""
    user, sep, password = text.partition(":")
    return (user, password) if sep and user else None


def read_secret(name: str, environ: dict[str, str] | None = None) -> str | None:
    """The value of the variable an upstream's ``api_key_env`` names, or None.

    Secrets are read on demand, never stored in :class:`Settings`, so they
    cannot reach a log line or a listing through it.
    """
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the environment (or the given mapping) into :class:`Settings`."""
    env = dict(os.environ if environ is None else environ)
    home = Path(_read(env, "HOME", twin=False) or Path.home() / ".llamaport").expanduser()
    models = Path(_read(env, "MODELS") or home / "models").expanduser()
    keep_alive_raw = _read(env, "KEEP_ALIVE")
    load_timeout_raw = _read(env, "LOAD_TIMEOUT")
    flash = _read(env, "FLASH_ATTENTION")
    origins = tuple(o.strip() for o in _read(env, "ORIGINS").split(",") if o.strip())
    context_length = _int(env, "CONTEXT_LENGTH", 0)
    max_loaded = _int(env, "MAX_LOADED_MODELS", 0)
    max_body = _int(env, "MAX_REQUEST_BYTES", 0, twin=False)
    return Settings(
        host=parse_host(_read(env, "HOST")),
        home=home,
        models=models,
        keep_alive=parse_keep_alive_env(keep_alive_raw) if keep_alive_raw else 300.0,
        context_length=context_length if context_length > 0 else 4096,
        num_parallel=max(1, _int(env, "NUM_PARALLEL", 4)),
        max_loaded_models=max_loaded if max_loaded > 0 else 3,
        max_queue=max(1, _int(env, "MAX_QUEUE", 512)),
        load_timeout=parse_keep_alive_env(load_timeout_raw) if load_timeout_raw else 300.0,
        num_thread=max(0, _int(env, "NUM_THREAD", 0, twin=False)),
        origins=origins,
        noprune=parse_bool(_read(env, "NOPRUNE")),
        nohistory=parse_bool(_read(env, "NOHISTORY")),
        debug=parse_bool(_read(env, "DEBUG")),
        flash_attention=parse_bool(flash) if flash else None,
        no_gpu=parse_bool(_read(env, "NO_GPU"))
        or env.get("CUDA_VISIBLE_DEVICES", "unset").strip().strip("\"'") == "",
        kv_cache_type=_read(env, "KV_CACHE_TYPE") or "f16",
        preload=tuple(n.strip() for n in _read(env, "PRELOAD", twin=False).split(",") if n.strip()),
        cache_ram=max(0, _int(env, "CACHE_RAM", Settings.cache_ram, twin=False)),
        cache_disk=max(0, _int(env, "CACHE_DISK", Settings.cache_disk, twin=False)),
        registry_auth=parse_registry_auth(_read(env, "REGISTRY_AUTH", twin=False)),
        hf_endpoint=(env.get("HF_ENDPOINT", "").strip() or "https://huggingface.co").rstrip("/"),
        hf_token=env.get("HF_TOKEN", "").strip() or None,
        max_request_bytes=max_body if max_body > 0 else Settings.max_request_bytes,
        max_blob_bytes=max(0, _int(env, "MAX_BLOB_BYTES", 0, twin=False)),
        api_key=_read(env, "API_KEY", twin=False),
        config=Path(_read(env, "CONFIG", twin=False) or home / "config.toml").expanduser(),
        shutdown_grace=_seconds(_read(env, "SHUTDOWN_GRACE", twin=False), 10.0),
    )


def _seconds(text: str, default: float) -> float:
    """Whole or fractional seconds, or a Go duration; ``default`` when empty or
    unparsable, never negative."""
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text)
        except ValueError:
            return default
    return max(0.0, seconds) if math.isfinite(seconds) else default
