"""Store paths: digests are validated before they become paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamaport.storage.errors import InvalidDigest
from llamaport.storage.layout import (
    blob_path,
    digest_hex,
    manifest_path,
    name_from_manifest_path,
    normalize_digest,
)
from llamaport.storage.names import Name, parse_name

HEX = "0123456789abcdef" * 4
ROOT = Path("/store")

GOOD_DIGESTS = [
    (f"sha256:{HEX}", HEX),
    (f"sha256-{HEX}", HEX),
    (f"sha256:{HEX.upper()}", HEX),
]

BAD_DIGESTS = [
    "",
    "sha256:",
    f"sha256:{HEX[:-1]}",
    f"sha256:{HEX}0",
    f"sha256:{HEX[:-1]}g",
    f"sha512:{HEX}",
    f"SHA256:{HEX}",
    f"sha256_{HEX}",
    f"sha256:{HEX}\n",
    f" sha256:{HEX}",
    f"sha256:../{HEX[3:]}",
    f"sha256:{HEX[:32]}/{HEX[33:]}",
    HEX,
]


@pytest.mark.parametrize(("digest", "hex_"), GOOD_DIGESTS, ids=["colon", "dash", "upper"])
def test_good_digests(digest: str, hex_: str) -> None:
    assert digest_hex(digest) == hex_
    assert normalize_digest(digest) == f"sha256:{hex_}"
    assert blob_path(ROOT, digest) == Path(f"/store/blobs/sha256-{hex_}")


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=[repr(d[:24]) for d in BAD_DIGESTS])
def test_bad_digests_never_become_paths(digest: str) -> None:
    with pytest.raises(InvalidDigest) as info:
        blob_path(ROOT, digest)
    assert str(info.value) == "invalid digest format"
    assert info.value.digest == digest


def test_manifest_path_keeps_port_and_case() -> None:
    name = parse_name("localhost:5000/Me/Model:V1")
    assert manifest_path(ROOT, name) == Path("/store/manifests/localhost:5000/Me/Model/V1")
    assert manifest_path(ROOT, parse_name("smollm2:135m")) == Path(
        "/store/manifests/registry.ollama.ai/library/smollm2/135m"
    )


FROM_PATH = [
    ("host/namespace/model/tag", Name("host", "namespace", "model", "tag")),
    ("host:port/namespace/model/tag", Name("host:port", "namespace", "model", "tag")),
    ("namespace/model/tag", None),
    ("model/tag", None),
    ("model", None),
    ("../../model/tag", None),
    ("h/namespace/./tag", None),
    ("./././.", None),
    ("a/b/c/d/e", None),
    ("h/n/m/.tmp-abc", None),
]


@pytest.mark.parametrize(("rel", "want"), FROM_PATH, ids=[f[0] for f in FROM_PATH])
def test_name_from_manifest_path(rel: str, want: Name | None) -> None:
    assert name_from_manifest_path(ROOT, ROOT / "manifests" / rel) == want


def test_name_from_path_outside_manifests() -> None:
    assert name_from_manifest_path(ROOT, Path("/elsewhere/h/n/m/t")) is None
