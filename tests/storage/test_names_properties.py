"""Property tests for the model-name parser (hypothesis).

* Any text parses to a :class:`Name` or raises :class:`InvalidModelName`,
  never another exception, and a parsed name's parts are safe path
  components (what the store builds paths from).
* Any valid name survives ``display_long`` and ``display_shortest`` and
  parsing back.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llamaport.storage.errors import InvalidModelName
from llamaport.storage.names import Name, parse_name

_PIECES = st.sampled_from(["/", ":", "://", ".", "..", "-", "_", "a", "Z9", "\n", " ", "é", "%2f"])
_NEAR_NAMES = st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=12).map("".join)

_HOST = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
_NAMESPACE = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,20}", fullmatch=True)
_PART = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=1000)
@given(st.one_of(_NEAR_NAMES, st.text()))
def test_any_text_is_a_safe_name_or_invalid(text: str) -> None:
    try:
        name = parse_name(text)
    except InvalidModelName:
        return
    for part in name.parts():
        assert part and part not in (".", "..")
        assert "/" not in part and "\\" not in part and "\x00" not in part
        assert part.isascii()


@settings(max_examples=500)
@given(
    host=_HOST.filter(lambda h: "://" not in h),
    namespace=_NAMESPACE,
    model=_PART,
    tag=_PART,
)
def test_valid_names_round_trip(host: str, namespace: str, model: str, tag: str) -> None:
    name = Name(host=host, namespace=namespace, model=model, tag=tag)
    assert parse_name(name.display_long()) == name
    assert parse_name(name.display_shortest()).equal_fold(name)
