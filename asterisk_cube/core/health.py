"""Liveness and readiness from a snapshot of what the process already holds (issue #15).

Pure: the web adapter (``web/app.py``) reads the parts' counters and timestamps into a
:class:`Snapshot`; :func:`assess` decides. Nothing here probes anything: ``/ready`` costs
a few attribute reads, so a load balancer may ask every second.

A part that is not running in this process (``None`` in the snapshot) is not checked.
Each check is ``ok`` or names its problem with a short fixed key (never an error text:
``/ready`` is public)."""

from __future__ import annotations

from dataclasses import dataclass

#: the database is unreachable when the config watcher (which reads it once a second)
#: has not read it for this long
DB_STALE_AFTER = 10.0
#: ARI is stale when neither a connect nor a ping answer came for this long
#: (the supervisor pings every 15 s and drops the connection after 2 failures)
ARI_STALE_AFTER = 45.0
#: a journal write failed this recently: the process is losing writes (not ready)
JOURNAL_FAILURE_WINDOW = 60.0
#: a mailer pass running (or not restarted) for this long is stuck
MAILER_STUCK_AFTER = 900.0


#: the checks ``/health``'s status covers: without them calls or their records are lost
CALL_PATH = frozenset({"database", "journal", "ari", "agi"})


@dataclass(frozen=True)
class Snapshot:
    """Ages are seconds since the event (``None``: never happened)."""

    started: bool = False  # serve finished starting (every part listens)
    ari_connected: bool | None = None  # None: no ARI supervisor in this process
    ari_alive_age: float | None = None  # since the connect or the last ping answer
    ami_connected: bool | None = None
    ami_synced: bool | None = None
    agi_listening: bool | None = None
    db_read_age: float | None = None  # since the last good read (None: never)
    db_watched: bool = False  # a config watcher reads the database
    journal_failures: int | None = None  # since start
    journal_failure_age: float | None = None  # since the last failure
    journal_pending: int | None = None
    mailer_pass_age: float | None = None  # since the mailer's loop last came round
    mailer_running: bool = False


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    problem: str = ""  # a fixed key: "disconnected", "stale", ...


def checks(snap: Snapshot) -> list[Check]:
    out: list[Check] = [Check("started", snap.started, "" if snap.started else "starting")]
    if snap.db_watched:
        age = snap.db_read_age
        if age is None or age > DB_STALE_AFTER:
            out.append(Check("database", False, "unreachable"))
        else:
            out.append(Check("database", True))
    if snap.journal_failures is not None:
        recent = (
            snap.journal_failure_age is not None
            and snap.journal_failure_age <= JOURNAL_FAILURE_WINDOW
        )
        out.append(Check("journal", not recent, "writes_failing" if recent else ""))
    if snap.ari_connected is not None:
        if not snap.ari_connected:
            out.append(Check("ari", False, "disconnected"))
        elif snap.ari_alive_age is not None and snap.ari_alive_age > ARI_STALE_AFTER:
            out.append(Check("ari", False, "stale"))
        else:
            out.append(Check("ari", True))
    if snap.ami_connected is not None:
        if not snap.ami_connected:
            out.append(Check("ami", False, "disconnected"))
        elif not snap.ami_synced:
            out.append(Check("ami", False, "stale"))
        else:
            out.append(Check("ami", True))
    if snap.agi_listening is not None:
        out.append(Check("agi", snap.agi_listening, "" if snap.agi_listening else "not_listening"))
    if snap.mailer_running:
        stuck = snap.mailer_pass_age is not None and snap.mailer_pass_age > MAILER_STUCK_AFTER
        out.append(Check("mailer", not stuck, "stuck" if stuck else ""))
    return out


def ready(found: list[Check]) -> bool:
    """Calls can be handled only when every check is ok."""
    return all(c.ok for c in found)


def summary(found: list[Check]) -> dict[str, str]:
    """``{"ari": "ok", "database": "unreachable", ...}``: what ``/ready`` shows."""
    return {c.name: "ok" if c.ok else c.problem for c in found}
