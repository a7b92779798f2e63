"""Affinity pins end with their conversation: deleting a stored conversation
(which calls the service's ``forget``) drops its pin, so a server that deletes
conversations does not keep a pin for each until the LRU bound."""

from __future__ import annotations

from pathlib import Path

from llamaport.runtime.proxy.config import ProxyConfig
from llamaport.runtime.proxy.router import ProxyService
from llamaport.storage.settings import load_settings
from llamaport.storage.store import Store
from tests.runtime.proxy.conftest import DEAD


async def test_forgetting_a_conversation_drops_its_pin(tmp_path: Path) -> None:
    settings = load_settings({"LLAMAPORT_HOME": str(tmp_path)})
    config = ProxyConfig.model_validate(
        {
            "upstream": [{"name": n, "kind": "ollama", "url": DEAD} for n in ("a", "b")],
            "route": [{"model": "m", "upstreams": ["a", "b"], "balance": "conversation_affinity"}],
        }
    )
    service = ProxyService(settings, Store(settings.models), config)
    try:
        route = service._route("m")
        assert route is not None
        service._pin("conversation-1", "b")
        assert service._order(route, "conversation-1")[0] == "b"
        await service.forget("conversation-1")
        assert service._order(route, "conversation-1")[0] == "a"
    finally:
        await service.close()
