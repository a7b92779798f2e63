"""Registries for the pull/push tests (session-scoped; started only when asked for)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat._registry import DockerRegistry, start_docker_registry

REGISTRY_USER = "llama"
REGISTRY_PASSWORD = "port-secret:with-colon"


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    registry = start_docker_registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """The same registry behind htpasswd basic auth (bcrypt hashes from ``htpasswd -B``)."""
    registry = start_docker_registry(
        tmp_path_factory.mktemp("auth-registry"), {REGISTRY_USER: REGISTRY_PASSWORD}
    )
    yield registry
    registry.stop()
