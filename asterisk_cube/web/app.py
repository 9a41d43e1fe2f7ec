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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..core import health
from ..health_state import health_payload, health_snapshot

__all__ = ["create_app", "health_payload", "health_snapshot"]

if TYPE_CHECKING:
    from ..config import Settings


async def liveness(request: Request) -> JSONResponse:
    """Always 200 while the process serves (a load balancer's liveness check); read
    ``status`` for readiness. Public: no error details (see :func:`health_payload`)."""
    return JSONResponse(health_payload(request.app.state.cube))


async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when calls can be handled, else 503; each check "ok" or a fixed
    problem key (never an error text: public, like ``/health``)."""
    found = health.checks(health_snapshot(request.app.state.cube))
    is_ready = health.ready(found)
    return JSONResponse(
        {"ready": is_ready, "checks": health.summary(found)}, status_code=200 if is_ready else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus exposition (``asterisk_cube.metrics``), read from held state."""
    found = (getattr(request.app.state.cube, "extras", None) or {}).get("metrics")
    if found is None:
        return Response("metrics are not collected in this process\n", status_code=404)
    from ..metrics import CONTENT_TYPE

    return Response(found.exposition(), media_type=CONTENT_TYPE)


async def version(request: Request) -> JSONResponse:
    return JSONResponse({"name": "asterisk-cube", "version": __version__})


def create_app(
    settings: Settings,
    state: Any,  # the runtime.RuntimeState
    *,
    extra_routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    debug: bool = False,
) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/health", liveness, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(debug=debug, routes=routes, middleware=list(middleware))
    app.state.settings = settings
    app.state.cube = state
    return app
