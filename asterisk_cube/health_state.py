"""The process's health read from what its running parts hold (no I/O): the snapshot the
pure verdicts in :mod:`asterisk_cube.core.health` judge, and the ``/health`` payload.

``state`` is the :class:`asterisk_cube.runtime.RuntimeState` (or a stand-in with the
same attributes); it is read by attribute only, so this module imports neither the
runtime nor the web app, and both (and :mod:`asterisk_cube.metrics`) can use it.
"""

from __future__ import annotations

import time
from typing import Any

from . import __version__
from .core import health
from .redact import redact


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else max(0.0, now - at)


def health_snapshot(state: Any, now: float | None = None) -> health.Snapshot:
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


def health_payload(state: Any, *, details: bool = False) -> dict[str, Any]:
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
