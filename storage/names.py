"""Ollama's model-name grammar: ``[scheme://][host/][namespace/]model[:tag]``.

A :class:`Name` is validated when it is built, so any ``Name`` is safe to turn
into a path under the store (no ``..``, no separators, no empty parts). The
rules follow Ollama's ``types/model/name.go``:

* the tag is split off at the last ``:`` only when it comes after the last
  ``/`` (so ``host:port/ns/model`` keeps its port);
* a separator that promises a part (``a/:b``, ``m:``) with nothing around it
  makes the name invalid;
* a ``scheme://`` prefix is accepted only in front of a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llamaport.storage.errors import InvalidModelName

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SCHEME",
    "DEFAULT_TAG",
    "Name",
    "parse_name",
]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

# ASCII only, as Ollama checks bytes; fullmatch so a trailing newline fails.
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_MODEL_OR_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True)
class Name:
    """A fully qualified model name; construction raises ``InvalidModelName``.

    ``scheme`` only tells a registry client whether to use http or https, so it
    takes no part in equality.
    """

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = field(default=DEFAULT_SCHEME, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks = (
            (_HOST, self.host),
            (_NAMESPACE, self.namespace),
            (_MODEL_OR_TAG, self.model),
            (_MODEL_OR_TAG, self.tag),
            (_SCHEME, self.scheme),
        )
        for pattern, part in checks:
            if pattern.fullmatch(part) is None:
                raise InvalidModelName(self.display_long())

    def display_shortest(self) -> str:
        """What ``/api/tags`` and the CLI show: defaults omitted, tag kept."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def display_long(self) -> str:
        """The full ``host/namespace/model:tag`` form, without the scheme."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def __str__(self) -> str:
        return self.display_long()

    def parts(self) -> tuple[str, str, str, str]:
        """``(host, namespace, model, tag)``, the four path components on disk."""
        return (self.host, self.namespace, self.model, self.tag)

    def fold_key(self) -> tuple[str, str, str, str]:
        """Lower-cased parts: use as a dict key where names compare case-insensitively."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def equal_fold(self, other: Name) -> bool:
        """Whether both name the same model ignoring case, as Ollama's ``EqualFold``."""
        return self.fold_key() == other.fold_key()


_MISSING = "!missing!"
"""Stands in for a part a separator promised but the text left empty; never valid."""


def _cut_last(text: str, sep: str) -> tuple[str, str | None]:
    """Split at the last ``sep``; a missing side becomes ``_MISSING``.

    Returns ``(text, None)`` when ``sep`` does not occur, so the caller can
    tell "no such part" from "empty part".
    """
    before, found, after = text.rpartition(sep)
    if not found:
        return text, None
    return before or _MISSING, after or _MISSING


def parse_name(text: str) -> Name:
    """Parse a user-supplied model name and fill Ollama's defaults.

    Raises ``InvalidModelName`` for anything outside the grammar; the error
    carries ``text`` unchanged.
    """
    rest = text
    tag: str | None = None
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = _cut_last(rest, ":")
    host: str | None = None
    namespace: str | None = None
    scheme = DEFAULT_SCHEME
    rest, model = _cut_last(rest, "/")
    if model is None:
        model = rest
    else:
        rest, namespace = _cut_last(rest, "/")
        if namespace is None:
            namespace = rest
        else:
            given_scheme, sep, host_part = rest.partition("://")
            if sep:
                scheme, host = given_scheme or DEFAULT_SCHEME, host_part
            else:
                host = rest
    try:
        return Name(
            host=DEFAULT_HOST if host is None else host,
            namespace=DEFAULT_NAMESPACE if namespace is None else namespace,
            model=model,
            tag=DEFAULT_TAG if tag is None else tag,
            scheme=scheme,
        )
    except InvalidModelName:
        raise InvalidModelName(text) from None
