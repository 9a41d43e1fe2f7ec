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
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..core import health
from ..redact import redact

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import RuntimeState


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else max(0.0, now - at)


def health_snapshot(state: RuntimeState | Any, now: float | None = None) -> health.Snapshot:
    """Read what the running parts already hold (counters, timestamps) into a snapshot;
    no I/O. Parts this process does not run are left out (``None``)."""
    now = time.monotonic() if now is None else now
    extras = getattr(state, "extras", None) or {}
    supervisor = getattr(state, "supervisor", None)
    agi = getattr(state, "agi", None)
    monitor = extras.get("ami")
    watcher = extras.get("config_watcher")
    mailer = extras.get("mailer")
    distributor = extras.get("distributor")
    journal = getattr(distributor, "journal", None)
    mailer_task = (getattr(state, "components", None) or {}).get("notes-mail")
    return health.Snapshot(
        started=getattr(state, "started_at", None) is not None,
        ari_connected=None if supervisor is None else bool(supervisor.connected),
        ari_alive_age=_age(now, getattr(supervisor, "alive_at", None)),
        ami_connected=None if monitor is None else bool(monitor.connected),
        ami_synced=None if monitor is None else bool(monitor.synced),
        agi_listening=None if agi is None else bool(agi.listening),
        db_watched=watcher is not None,
        db_read_age=_age(now, getattr(watcher, "last_read_at", None)),
        journal_failures=None if journal is None else journal.failures,
        journal_failure_age=_age(now, getattr(journal, "last_failure_at", None)),
        journal_pending=None if journal is None else journal.pending,
        mailer_running=mailer is not None and mailer_task is not None and not mailer_task.done(),
        mailer_pass_age=_age(now, getattr(mailer, "pass_started_at", None)),
    )


def health_payload(state: RuntimeState | Any, *, details: bool = False) -> dict[str, Any]:
    """``status`` is "ok" when ARI is connected, AGI listens and the database and the
    write-behind journal work (:data:`..core.health.CALL_PATH`), else "degraded";
    ``problems`` names every failing check (AMI, mailer too) by a fixed key.

    Without ``details`` (``GET /health``, no login) it says how things are, never why:
    error texts (ARI's last error) are only in the ``details`` payload, which
    ``GET /api/health`` gives a signed-in supervisor or admin, redacted even then."""
    supervisor = getattr(state, "supervisor", None)
    agi = getattr(state, "agi", None)
    # (AgiServer is a dict subclass: an empty one is falsy, hence "is not None")
    ari_connected = supervisor is not None and supervisor.connected
    agi_listening = agi is not None and agi.listening
    snap = health_snapshot(state)
    found = health.checks(snap)
    # "status" covers what loses calls or writes; every problem is listed, and /ready
    # (the gate) also waits for the start, AMI (panel, supervision) and the mailer
    ok = health.ready([c for c in found if c.name in health.CALL_PATH])
    payload: dict[str, Any] = {
        "status": "ok" if ok and ari_connected and agi_listening else "degraded",
        "version": __version__,
        "ari": {"connected": ari_connected},
        "agi": {"listening": agi_listening},
    }
    problems = {c.name: c.problem for c in found if not c.ok and c.name != "started"}
    if problems:
        payload["problems"] = problems
    if snap.journal_failures is not None:
        payload["journal"] = {"failures": snap.journal_failures, "pending": snap.journal_pending}
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
    monitor = (getattr(state, "extras", None) or {}).get("ami")
    if monitor is not None:
        payload["ami"] = {"connected": bool(monitor.connected), "synced": bool(monitor.synced)}
        if details:
            payload["ami"]["last_error"] = redact(getattr(monitor, "last_error", "") or "")
    started = getattr(state, "started_at", None)
    if started is not None:
        payload["uptime"] = round(time.time() - started, 1)
    components = getattr(state, "components", None)
    if components:
        payload["components"] = {
            name: ("running" if not task.done() else "stopped") for name, task in components.items()
        }
    return payload


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
    state: RuntimeState | Any,
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
