"""Manifest and config JSON must match Ollama's bytes exactly (digests depend on it)."""

from __future__ import annotations

import json
import platform as stdlib_platform
import sys

import pytest

from llamaport.storage import manifest as manifest_mod
from llamaport.storage.errors import CorruptModel
from llamaport.storage.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_TEMPLATE,
    Layer,
    Manifest,
    ModelConfig,
    go_platform,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64

OLLAMA_BYTES = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json",'
    b'"digest":"' + A.encode() + b'","size":561},'
    b'"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"'
    + B.encode()
    + b'","size":2019377376,"from":"llama3.2:latest"},'
    b'{"mediaType":"application/vnd.ollama.image.template","digest":"'
    + C.encode()
    + b'","size":1429}]}'
)


def test_media_type_constants() -> None:
    assert MEDIA_TYPE_CONFIG == "application/vnd.docker.container.image.v1+json"
    assert MEDIA_TYPE_MODEL == "application/vnd.ollama.image.model"
    assert MEDIA_TYPE_TEMPLATE == "application/vnd.ollama.image.template"
    assert MEDIA_TYPE_PARAMS == "application/vnd.ollama.image.params"
    assert MEDIA_TYPE_LICENSE == "application/vnd.ollama.image.license"
    assert manifest_mod.MEDIA_TYPE_PROJECTOR == "application/vnd.ollama.image.projector"
    assert manifest_mod.MEDIA_TYPE_ADAPTER == "application/vnd.ollama.image.adapter"
    assert manifest_mod.MEDIA_TYPE_SYSTEM == "application/vnd.ollama.image.system"
    assert manifest_mod.MEDIA_TYPE_MESSAGES == "application/vnd.ollama.image.messages"


def test_round_trip_is_byte_exact() -> None:
    manifest = Manifest.from_json(OLLAMA_BYTES)
    assert manifest.config == Layer(MEDIA_TYPE_CONFIG, A, 561)
    assert manifest.layers == [
        Layer(MEDIA_TYPE_MODEL, B, 2019377376, from_="llama3.2:latest"),
        Layer(MEDIA_TYPE_TEMPLATE, C, 1429),
    ]
    assert manifest.to_json() == OLLAMA_BYTES
    assert manifest.size == 561 + 2019377376 + 1429


def test_built_manifest_json() -> None:
    manifest = Manifest(
        config=Layer(MEDIA_TYPE_CONFIG, A, 10), layers=[Layer(MEDIA_TYPE_MODEL, B, 5)]
    )
    assert json.loads(manifest.to_json()) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": A, "size": 10},
        "layers": [{"mediaType": MEDIA_TYPE_MODEL, "digest": B, "size": 5}],
    }
    assert b" " not in manifest.to_json()
    assert manifest.all_layers()[0].digest == A
    assert manifest.layers_of(MEDIA_TYPE_TEMPLATE) == []


def test_tensor_layer_name_round_trips() -> None:
    layer = Layer("application/vnd.ollama.image.tensor", B, 7, name="model.embed.weight")
    assert layer.to_dict()["name"] == "model.embed.weight"
    assert Layer.from_dict(layer.to_dict()) == layer


BAD_MANIFESTS = [
    b"",
    b"not json",
    b"[]",
    b'{"layers":[]}',
    b'{"config":{"mediaType":"x","digest":"sha256:abc","size":1},"layers":[]}',
    b'{"config":{"mediaType":"x","digest":"' + A.encode() + b'","size":-1},"layers":[]}',
    b'{"config":{"mediaType":"x","digest":"' + A.encode() + b'","size":"1"},"layers":[]}',
    b'{"config":{"mediaType":"x","digest":"' + A.encode() + b'","size":1},"layers":{}}',
    b'{"config":{"mediaType":"x","digest":"' + A.encode() + b'","size":1},"layers":[1]}',
    b'{"config":{"mediaType":"x","digest":"' + A.encode() + b'","size":true},"layers":[]}',
]


@pytest.mark.parametrize("data", BAD_MANIFESTS, ids=[str(i) for i in range(len(BAD_MANIFESTS))])
def test_bad_manifests(data: bytes) -> None:
    with pytest.raises(CorruptModel):
        Manifest.from_json(data)


def test_model_config_bytes_match_go_struct_order() -> None:
    config = ModelConfig(
        model_family="llama",
        model_type="134.52M",
        file_type="Q4_1",
        architecture="amd64",
        os="linux",
    )
    assert config.to_json() == (
        b'{"model_format":"gguf","model_family":"llama","model_families":["llama"],'
        b'"model_type":"134.52M","file_type":"Q4_1","architecture":"amd64","os":"linux"}'
    )


def test_model_config_optional_fields() -> None:
    config = ModelConfig(
        model_family="qwen3",
        model_type="4.0B",
        file_type="Q4_K_M",
        renderer="qwen3",
        capabilities=("completion", "tools"),
        context_length=40960,
        architecture="arm64",
        os="darwin",
    )
    assert list(config.to_dict()) == [
        "model_format",
        "model_family",
        "model_families",
        "model_type",
        "file_type",
        "renderer",
        "capabilities",
        "context_length",
        "architecture",
        "os",
    ]


@pytest.mark.parametrize(
    ("machine", "platform", "want"),
    [
        ("x86_64", "linux", ("amd64", "linux")),
        ("aarch64", "linux", ("arm64", "linux")),
        ("arm64", "darwin", ("arm64", "darwin")),
        ("AMD64", "win32", ("amd64", "windows")),
    ],
    ids=["linux-amd64", "linux-arm64", "mac", "windows"],
)
def test_go_platform(
    monkeypatch: pytest.MonkeyPatch, machine: str, platform: str, want: tuple[str, str]
) -> None:
    monkeypatch.setattr(stdlib_platform, "machine", lambda: machine)
    monkeypatch.setattr(sys, "platform", platform)
    assert go_platform() == want
