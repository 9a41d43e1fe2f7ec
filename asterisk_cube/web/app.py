"""The web app (Starlette), served by uvicorn inside ``serve``'s event loop.

:func:`create_app` is the one place that assembles routes; later parts (auth, desktop,
panel) add theirs by passing ``extra_routes`` or by extending the list built here::

    from starlette.routing import Route

    async def panel(request):
        state = request.app.state.cube          # the RuntimeState
        ...

    app = create_app(settings, state, extra_routes=[Route("/panel", panel)])

Handlers reach the runtime through ``request.app.state.cube`` (hub, supervisor, AGI server,
settings) and ``request.app.state.settings``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..redact import redact

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import RuntimeState


def health_payload(state: RuntimeState | Any, *, details: bool = False) -> dict[str, Any]:
    """``status`` is "ok" when ARI is connected and AGI listens, else "degraded".

    Without ``details`` (``GET /health``, no login) it says how things are, never why:
    error texts (ARI's last error) are only in the ``details`` payload, which
    ``GET /api/health`` gives a signed-in supervisor or admin, redacted even then."""
    supervisor = getattr(state, "supervisor", None)
    agi = getattr(state, "agi", None)
    # (AgiServer is a dict subclass: an empty one is falsy, hence "is not None")
    ari_connected = supervisor is not None and supervisor.connected
    agi_listening = agi is not None and agi.listening
    payload: dict[str, Any] = {
        "status": "ok" if ari_connected and agi_listening else "degraded",
        "version": __version__,
        "ari": {"connected": ari_connected},
        "agi": {"listening": agi_listening},
    }
    if supervisor is not None:
        payload["ari"].update(app=supervisor.settings.app, connects=supervisor.connects)
        if details:
            payload["ari"]["last_error"] = redact(supervisor.last_error or "")
    if agi is not None:
        payload["agi"].update(port=agi.bound_port, sessions=agi.sessions_total)
        limits = getattr(agi, "limit_stats", None)
        if limits is not None:
            payload["agi"].update(limits())
    guard = getattr(state, "web_guard", None)
    if guard is not None:
        payload["web"] = {"connections": guard.stats()}
    started = getattr(state, "started_at", None)
    if started is not None:
        payload["uptime"] = round(time.time() - started, 1)
    components = getattr(state, "components", None)
    if components:
        payload["components"] = {
            name: ("running" if not task.done() else "stopped") for name, task in components.items()
        }
    return payload


async def health(request: Request) -> JSONResponse:
    """Always 200 while the process serves (a load balancer's liveness check); read
    ``status`` for readiness. Public: no error details (see :func:`health_payload`)."""
    return JSONResponse(health_payload(request.app.state.cube))


async def version(request: Request) -> JSONResponse:
    return JSONResponse({"name": "asterisk-cube", "version": __version__})


def create_app(
    settings: Settings,
    state: RuntimeState | Any,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    debug: bool = False,
) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(debug=debug, routes=routes, middleware=list(middleware))
    app.state.settings = settings
    app.state.cube = state
    return app
