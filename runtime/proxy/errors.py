"""What can go wrong between llamaport and an upstream.

::

    LlamaportError
    ├── UpstreamError            a link failed (502)
    │   ├── UpstreamUnavailable  connection refused/reset, 429, 5xx: retried, then failed over
    │   ├── UpstreamBadReply     garbage or the wrong shape
    │   ├── UpstreamTimeout      no reply within timeout_s (504)
    │   └── UpstreamBroken       the stream broke after a token was sent (never retried)
    ├── NoUpstreamLeft           every link of the chain failed or is cooling down (502)
    └── BadRequest
        ├── UpstreamRejected     the upstream refused the request itself (4xx); a 404
        │                        (no such model there) moves on to the next link
        └── RoutedModel          an operation only local models have (pull, create, ...)

Messages name the upstream and never carry its API key.
"""

from __future__ import annotations

from llamaport.runtime.errors import BadRequest, LlamaportError

__all__ = [
    "NoUpstreamLeft",
    "RoutedModel",
    "UpstreamBadReply",
    "UpstreamBroken",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class UpstreamError(LlamaportError):
    def __init__(self, upstream: str, detail: str) -> None:
        self.upstream = upstream
        self.detail = detail
        super().__init__(f'upstream "{upstream}": {detail}')


class UpstreamUnavailable(UpstreamError):
    """Worth another try: on this upstream (after a back-off) or the next one."""

    def __init__(self, upstream: str, detail: str, fatal: bool = False) -> None:
        super().__init__(upstream, detail)
        self.fatal = fatal
        """Retrying cannot fix it (a refused key): cool down at once, try the next link."""


class UpstreamBadReply(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBroken(UpstreamError):
    pass


class NoUpstreamLeft(LlamaportError):
    def __init__(self, model: str, tried: dict[str, str]) -> None:
        self.tried = tried
        detail = "; ".join(f"{name}: {why}" for name, why in tried.items())
        super().__init__(f'no upstream could serve "{model}" (tried {detail})')


class UpstreamRejected(BadRequest):
    def __init__(self, upstream: str, status: int, detail: str) -> None:
        self.upstream = upstream
        self.status = status
        super().__init__(f'upstream "{upstream}" refused the request ({status}): {detail}')


class RoutedModel(BadRequest):
    def __init__(self, model: str, upstream: str, action: str) -> None:
        self.upstream = upstream
        super().__init__(
            f'cannot {action} "{model}": it is served by upstream "{upstream}", not stored here'
        )
