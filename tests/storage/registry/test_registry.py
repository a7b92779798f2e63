"""The registry client's rules: URL scheme, auth challenges, GGUF choice, progress shape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamaport.storage.names import parse_name
from llamaport.storage.registry import (
    GGUFFile,
    InsecureProtocol,
    Progress,
    QuantizationNotFound,
    RegistryClient,
    RegistryError,
    RegistryUnauthorized,
    choose_gguf,
    pull_model,
    push_model,
    registry_base_url,
)
from llamaport.storage.registry.upload import UPLOAD_CHUNK
from llamaport.storage.settings import Settings, load_settings, parse_registry_auth
from llamaport.storage.store import Store
from tests.compat._registry import FakeRegistry
from tests.storage.conftest import ModelFactory


@pytest.mark.parametrize(
    ("name", "insecure", "url"),
    [
        ("127.0.0.1:5000/library/m:tag", False, "https://127.0.0.1:5000"),
        ("127.0.0.1:5000/library/m:tag", True, "http://127.0.0.1:5000"),
        ("https://reg.example/ns/m", True, "http://reg.example"),
        ("http://reg.example/ns/m", True, "http://reg.example"),
        ("llama3.2", False, "https://registry.ollama.ai"),
    ],
    ids=["https-by-default", "insecure-is-http", "insecure-wins", "http-with-insecure", "default"],
)
def test_registry_base_url(name: str, insecure: bool, url: str) -> None:
    assert registry_base_url(parse_name(name), insecure) == url


def test_an_http_name_needs_insecure() -> None:
    with pytest.raises(InsecureProtocol, match=r"^insecure protocol http$"):
        registry_base_url(parse_name("http://reg.example/ns/m"), False)


def test_progress_leaves_out_empty_fields_like_go() -> None:
    assert Progress("success").to_dict() == {"status": "success"}
    event = Progress("pulling abc", "sha256:abc", 10, 0).to_dict()
    assert event == {"status": "pulling abc", "digest": "sha256:abc", "total": 10}


def files(*entries: tuple[str, int]) -> list[GGUFFile]:
    return [GGUFFile(path, size) for path, size in entries]


REPO = [
    ("m-Q2_K.gguf", 10),
    ("m-Q4_K_M.gguf", 30),
    ("m-Q4_K.gguf", 25),
    ("m-IQ4_XS.gguf", 20),
    ("m-Q8_0.gguf", 50),
    ("mmproj-m-F16.gguf", 5),
]


@pytest.mark.parametrize(
    ("entries", "tag", "chosen"),
    [
        (REPO, "latest", "m-Q4_K_M.gguf"),
        (REPO, "q8_0", "m-Q8_0.gguf"),
        (REPO, "Q4_K", "m-Q4_K.gguf"),
        (REPO, "IQ4_XS", "m-IQ4_XS.gguf"),
        ([e for e in REPO if "Q4_K_M" not in e[0]], "latest", "m-Q2_K.gguf"),
        ([("sub/dir/model.Q4_K_M.gguf", 3)], "latest", "sub/dir/model.Q4_K_M.gguf"),
    ],
    ids=["default", "case-insensitive", "whole-word", "iq", "smallest", "folder"],
)
def test_choose_gguf(entries: list[tuple[str, int]], tag: str, chosen: str) -> None:
    assert choose_gguf("hf.co/o/r", files(*entries), tag).path == chosen


def test_choose_gguf_refusals() -> None:
    with pytest.raises(QuantizationNotFound) as missing:
        choose_gguf("hf.co/o/r", files(*REPO), "Q5_K_M")
    assert "mmproj" not in str(missing.value) and "m-Q8_0.gguf" in str(missing.value)
    with pytest.raises(QuantizationNotFound):
        choose_gguf("hf.co/o/r", files(("mmproj-F16.gguf", 1)), "latest")
    with pytest.raises(RegistryError, match="split into several files"):
        choose_gguf("hf.co/o/r", files(("m-Q4_K_M-00001-of-00002.gguf", 1)), "latest")


def test_settings_for_registries() -> None:
    assert parse_registry_auth("user:pass:word") == ("user", "pass:word")
    assert parse_registry_auth("") is None
    assert parse_registry_auth("no-colon") is None
    settings = load_settings({"LLAMAPORT_REGISTRY_AUTH": "'u:p'", "HF_ENDPOINT": "http://h:1/"})
    assert settings.registry_auth == ("u", "p")
    assert settings.hf_endpoint == "http://h:1"
    assert load_settings({}).hf_endpoint == "https://huggingface.co"
    assert load_settings({"OLLAMA_REGISTRY_AUTH": "u:p"}).registry_auth is None


@pytest.fixture
def token_registry() -> Iterator[FakeRegistry]:
    registry = FakeRegistry(token="s3cret")
    registry.add_model("test/m", "v1", b'{"schemaVersion":2}', {})
    yield registry
    registry.stop()


def test_bearer_token_from_the_challenge(token_registry: FakeRegistry) -> None:
    name = parse_name(f"{token_registry.host}/test/m:v1")
    with RegistryClient(name, insecure=True) as client:
        assert client.get_manifest("v1", "application/json") == b'{"schemaVersion":2}'
        assert client.get_manifest("v1", "application/json") == b'{"schemaVersion":2}'
    assert token_registry.token_requests == [
        ("service=fake&scope=repository%3Atest%2Fm%3Apull", "")
    ]  # one token, reused; no credentials unless configured


def test_basic_credentials_go_to_a_realm_on_the_same_host_only(
    token_registry: FakeRegistry,
) -> None:
    name = parse_name(f"{token_registry.host}/test/m:v1")
    with RegistryClient(name, insecure=True, basic_auth=("u", "p")) as client:
        client.get_manifest("v1", "application/json")
    assert token_registry.token_requests[-1][1] == "Basic dTpw"
    token_registry.realm = token_registry.url.replace("127.0.0.1", "localhost") + "/token"
    with RegistryClient(name, insecure=True, basic_auth=("u", "p")) as client:
        client.get_manifest("v1", "application/json")
    assert token_registry.token_requests[-1][1] == ""  # plain HTTP to another host


def test_a_refused_token_is_unauthorized(token_registry: FakeRegistry) -> None:
    token_registry.issued = "forged"  # the realm hands out a token the registry refuses
    name = parse_name(f"{token_registry.host}/test/m:v1")
    with (
        RegistryClient(name, insecure=True) as client,
        pytest.raises(RegistryUnauthorized, match=r"^401: "),
    ):
        client.get_manifest("v1", "application/json")


def test_package_all_entries_exist() -> None:
    import llamaport.storage.registry as registry

    assert [name for name in registry.__all__ if not hasattr(registry, name)] == []


def test_push_and_pull_through_a_token_registry(
    token_registry: FakeRegistry, store: Store, add_model: ModelFactory, tmp_path: Path
) -> None:
    name = f"{token_registry.host}/test/pushed:v1"
    manifest = add_model(name, weights=os.urandom(3 * UPLOAD_CHUNK // 2))
    settings = Settings(registry_auth=None)
    pushed = [e.status for e in push_model(store, name, settings, insecure=True)]
    assert pushed[0] == "retrieving manifest" and pushed[-2:] == ["pushing manifest", "success"]
    assert token_registry.manifests["test/pushed:v1"] == store.read_manifest(parse_name(name))[1]
    assert token_registry.token_requests  # every call above went through the bearer token

    other = Store(tmp_path / "other")
    pulled = [e.status for e in pull_model(other, name, settings, insecure=True)]
    assert pulled[-1] == "success"
    for layer in manifest.all_layers():
        assert (
            other.blob_path(layer.digest).read_bytes() == store.blob_path(layer.digest).read_bytes()
        )
