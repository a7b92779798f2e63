"""Fixtures shared by the compat tests.

* Registries for the pull/push tests (session-scoped; started only when asked for).
* A stored model with every text layer, written the way Ollama lays them out:
  ``/api/create`` is not needed, the manifest is written with ``storage.Store``
  into the session server's store, over the embedded model's weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from llamaport.storage import (
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    Layer,
    Manifest,
    Store,
    parse_name,
)
from tests.compat._registry import DockerRegistry, start_docker_registry
from tests.conftest import MODEL, Server

TEMPLATE = """{{- if .Suffix }}<fim_prefix>{{ .Prompt }}<fim_suffix>{{ .Suffix }}<fim_middle>
{{- else }}
{{- if or .System .Tools }}<|im_start|>system
{{ .System }}
{{- range .Tools }}
TOOL {{ .Function.Name }}: {{ .Function.Description }}
{{- end }}<|im_end|>
{{ end }}
{{- range .Messages }}
{{- if ne .Role "system" }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
{{ end }}"""
"""A chatml Go template that also knows tools and fill-in-the-middle."""


@dataclass
class TemplatedModel:
    name: str
    template: str
    system: str
    params: dict[str, Any]
    messages: list[dict[str, str]]
    license: str


def write_model(store: Store, name: str, texts: dict[str, str]) -> None:
    """Store ``name``: the embedded model's weights plus one layer per ``texts`` item."""
    base, _ = store.read_manifest(parse_name(MODEL))
    layers = [base.layers[0]]
    for media_type, text in texts.items():
        ref = store.write_blob_bytes(text.encode())
        layers.append(Layer(media_type, ref.digest, ref.size))
    store.write_manifest(parse_name(name), Manifest(config=base.config, layers=layers))


@pytest.fixture(scope="session")
def templated_model(server: Server) -> Iterator[TemplatedModel]:
    model = TemplatedModel(
        name="templated:latest",
        template=TEMPLATE,
        system="You are Mario.",
        params={"num_predict": 3, "temperature": 0.25, "stop": ["<|x|>", "END"]},
        messages=[
            {"role": "user", "content": "Is Toronto in Canada?"},
            {"role": "assistant", "content": "yes"},
        ],
        license="MIT License\nCopyright\nAll rights",
    )
    write_model(
        Store(server.home / "models"),
        model.name,
        {
            MEDIA_TYPE_TEMPLATE: model.template,
            MEDIA_TYPE_SYSTEM: model.system,
            MEDIA_TYPE_PARAMS: json.dumps(model.params),
            MEDIA_TYPE_MESSAGES: json.dumps(model.messages),
            MEDIA_TYPE_LICENSE: model.license,
        },
    )
    yield model


REGISTRY_USER = "llama"
REGISTRY_PASSWORD = "port-secret:with-colon"


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """The same registry behind htpasswd basic auth (bcrypt hashes from ``htpasswd -B``)."""
    registry = start_docker_registry(
        tmp_path_factory.mktemp("auth-registry"), {REGISTRY_USER: REGISTRY_PASSWORD}
    )
    yield registry
    registry.stop()
