"""Name grammar, ported from the cases of Ollama's ``types/model/name_test.go``."""

from __future__ import annotations

import pytest

from llamaport.storage.errors import InvalidModelName, StorageError
from llamaport.storage.names import Name, parse_name

PART80 = "8" * 80
PART350 = "3" * 350

VALID = [
    (
        "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K",
        ("registry.ollama.ai", "library", "dolphin-mistral", "7b-v2.6-dpo-laser-q6_K"),
    ),
    ("scheme://host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
    ("host/namespace/model:tag", ("host", "namespace", "model", "tag")),
    ("host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
    ("host/namespace/model", ("host", "namespace", "model", "latest")),
    ("host:port/namespace/model", ("host:port", "namespace", "model", "latest")),
    ("namespace/model", ("registry.ollama.ai", "namespace", "model", "latest")),
    ("model", ("registry.ollama.ai", "library", "model", "latest")),
    ("h/nn/mm:t", ("h", "nn", "mm", "t")),
    ("h/n/m:t", ("h", "n", "m", "t")),
    ("_why/_the/_lucky:_stiff", ("_why", "_the", "_lucky", "_stiff")),
    ("host:https/namespace/model:tag", ("host:https", "namespace", "model", "tag")),
    ("xx", ("registry.ollama.ai", "library", "xx", "latest")),
    ("smollm2:135m", ("registry.ollama.ai", "library", "smollm2", "135m")),
    ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
    ("localhost:5000/me/m", ("localhost:5000", "me", "m", "latest")),
    ("http://localhost:5000/me/m:v1", ("localhost:5000", "me", "m", "v1")),
    (
        f"{PART80}/{PART80}/{PART80}:{PART80}",
        (PART80, PART80, PART80, PART80),
    ),
    (
        f"{PART350}/{PART80}/{PART80}:{PART80}",
        (PART350, PART80, PART80, PART80),
    ),
]

INVALID = [
    "",
    ":",
    "mm:",
    "n/m:",
    "/nn/mm",
    "//",
    "//mm",
    "hh//",
    "//mm:@",
    "00@",
    "@",
    "@t",
    "m@d",
    "model@sha256:" + "1" * 64,
    "^",
    "-hh/nn/mm:tt",
    "hh/-nn/mm:tt",
    "hh/nn/-mm:tt",
    "hh/nn/mm:-tt",
    "host/name:space/model:tag",
    "host/na.me/model:tag",
    "a/b/c/d/e",
    "../x",
    "x:..",
    "..",
    ".",
    "./m",
    "m/..",
    "h/../m",
    "a\\b",
    "m\n",
    "m:t\n",
    "m m",
    "mödel",
    "http://m",
    "https://ns/m",
    "scheme:///ns/m",
    f"{PART350}3/n/m:t",
    f"h/{PART80}8/m:t",
    f"h/n/{PART80}8:t",
    f"h/n/m:{PART80}8",
]


@pytest.mark.parametrize(("text", "parts"), VALID, ids=[v[0][:40] for v in VALID])
def test_parse_valid(text: str, parts: tuple[str, str, str, str]) -> None:
    assert parse_name(text).parts() == parts


@pytest.mark.parametrize("text", INVALID, ids=[repr(t[:40]) for t in INVALID])
def test_parse_invalid(text: str) -> None:
    with pytest.raises(InvalidModelName) as info:
        parse_name(text)
    assert str(info.value) == "invalid model name"
    assert info.value.name == text
    assert isinstance(info.value, StorageError)


def test_scheme_is_kept_but_not_compared() -> None:
    name = parse_name("http://localhost:5000/me/m:v1")
    assert name.scheme == "http"
    assert parse_name("model").scheme == "https"
    assert name == parse_name("localhost:5000/me/m:v1")
    assert str(name) == "localhost:5000/me/m:v1"


def test_default_fill_string() -> None:
    assert str(parse_name("xx")) == "registry.ollama.ai/library/xx:latest"
    assert parse_name("xx").display_long() == "registry.ollama.ai/library/xx:latest"


DISPLAY = [
    ("registry.ollama.ai/library/model:latest", "model:latest"),
    ("registry.ollama.ai/library/model:tag", "model:tag"),
    ("registry.ollama.ai/namespace/model:tag", "namespace/model:tag"),
    ("host/namespace/model:tag", "host/namespace/model:tag"),
    ("host/library/model:tag", "host/library/model:tag"),
    ("REGISTRY.ollama.ai/LIBRARY/Model:Tag", "Model:Tag"),
    ("model", "model:latest"),
]


@pytest.mark.parametrize(("text", "shortest"), DISPLAY, ids=[d[0] for d in DISPLAY])
def test_display_shortest(text: str, shortest: str) -> None:
    assert parse_name(text).display_shortest() == shortest


def test_equal_fold() -> None:
    assert parse_name("SMOLLM2:135M").equal_fold(parse_name("smollm2:135m"))
    assert parse_name("Host/NS/M:T").equal_fold(parse_name("host/ns/m:t"))
    assert not parse_name("smollm2:135m").equal_fold(parse_name("smollm2:360m"))
    assert parse_name("SMOLLM2:135M") != parse_name("smollm2:135m")
    assert parse_name("SMOLLM2:135M").fold_key() == (
        "registry.ollama.ai",
        "library",
        "smollm2",
        "135m",
    )


@pytest.mark.parametrize(
    "parts",
    [("..", "n", "m", "t"), ("h", "n", "m", ".."), ("h", "n/x", "m", "t"), ("h", "n", "", "t")],
    ids=["dotdot-host", "dotdot-tag", "slash-namespace", "empty-model"],
)
def test_direct_construction_validates(parts: tuple[str, str, str, str]) -> None:
    with pytest.raises(InvalidModelName):
        Name(*parts)
