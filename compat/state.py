"""What the routes read from ``app.state``: the one :class:`Service` (the lifespan in
``compat/app.py`` puts it there). The conversation store has its own accessor,
:func:`~llamaport.compat.history.ready_history`, which also waits for it to open."""

from __future__ import annotations

from starlette.requests import Request

from llamaport.runtime.service import Service

__all__ = ["service_of"]


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
