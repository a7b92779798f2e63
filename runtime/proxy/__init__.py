"""Proxy mode: routed models served by existing engines behind llamaport's API.

config.py (the TOML file), choice.py (the pure routing choice), health.py
(breaker, outstanding, concurrency), one client per upstream kind
(openai_kind.py, ollama_kind.py) and router.py (:class:`ProxyService`).
"""

from llamaport.runtime.proxy.choice import Link, choose
from llamaport.runtime.proxy.config import (
    LOCAL,
    ConfigError,
    ProxyConfig,
    RouteConfig,
    UpstreamConfig,
    load_config,
)
from llamaport.runtime.proxy.errors import (
    NoUpstreamLeft,
    RoutedModel,
    UpstreamBadReply,
    UpstreamBroken,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llamaport.runtime.proxy.health import Breaker, UpstreamState
from llamaport.runtime.proxy.router import ProxyService

__all__ = [
    "LOCAL",
    "Breaker",
    "ConfigError",
    "Link",
    "NoUpstreamLeft",
    "ProxyConfig",
    "ProxyService",
    "RouteConfig",
    "RoutedModel",
    "UpstreamBadReply",
    "UpstreamBroken",
    "UpstreamConfig",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamState",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "choose",
    "load_config",
]
