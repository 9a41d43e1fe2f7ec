"""The node lease in the database (issue #14): take it at start, renew it, release it.

The rules (live, stale, expiry) are in :mod:`asterisk_cube.core.nodes`; the loop that
renews off the event loop is :mod:`asterisk_cube.node_lease`. Everything here is
blocking database work, called from a worker thread once ``serve`` runs.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable
from typing import overload

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.core import nodes as core
from asterisk_cube.db import models as m
from asterisk_cube.db.models import utcnow
from asterisk_cube.db.session import transaction

#: The pause an agent is put in when its node restarts (docs/architecture.md,
#: "Several nodes"): nobody is offered a call before they are back at the desk.
RESTART_PAUSE = "restart"


class NodeNameInUse(RuntimeError):
    """A live node holds this node name; the message says which and what to do."""


class LeaseLost(RuntimeError):
    """Another process holds our node name now: this one must stop."""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (another than ourselves)."""
    if pid == os.getpid():
        return False  # the row is a previous holder's whose pid we now have
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@overload
def _lease(row: m.Node) -> core.Lease: ...
@overload
def _lease(row: None) -> None: ...
def _lease(row: m.Node | None) -> core.Lease | None:
    if row is None:
        return None
    return core.Lease(
        row.name, row.host, row.pid, row.started_at, row.heartbeat_at, row.lease_until
    )


def pause_own_agents(s: Session, node: str, now: dt.datetime) -> int:
    """After a (re)start: this node's agents who were ready (or being offered a call) are
    paused with reason ``restart``; those busy or in wrap-up get that pause when the
    call's wrap-up ends. Agents of other nodes are not touched. Returns how many."""
    rows = s.scalars(
        select(m.AgentStatus)
        .where(
            m.AgentStatus.state.in_(
                (m.AgentState.READY, m.AgentState.OFFERED, m.AgentState.BUSY, m.AgentState.WRAP_UP)
            ),
            (m.AgentStatus.node == node) | m.AgentStatus.node.is_(None),
        )
        .with_for_update()
    ).all()
    for row in rows:
        if row.state in (m.AgentState.BUSY, m.AgentState.WRAP_UP):
            row.pause_requested = row.pause_requested or RESTART_PAUSE
            continue
        move_agent(s, row, m.AgentState.PAUSED, RESTART_PAUSE, now)
        row.pause_reason = RESTART_PAUSE
    return len(rows)


def move_agent(
    s: Session, row: m.AgentStatus, to_state: m.AgentState, reason: str, now: dt.datetime
) -> None:
    """Move an agent's status row to ``to_state`` with its state-log record, for the
    writes made outside the distributor (a node's restart, a dead node's takeover)."""
    s.add(
        m.AgentStateLog(
            agent_id=row.agent_id, at=now, from_state=row.state, to_state=to_state, reason=reason
        )
    )
    row.state, row.since = to_state, now
    row.call_id = None


class NodeLease:
    """This process's lease on its node name."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        *,
        host: str | None = None,
        pid: int | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        alive: Callable[[int], bool] = pid_alive,
        lease_seconds: float = core.LEASE_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.clock = clock
        self.alive = alive
        self.lease_seconds = lease_seconds
        self.started_at: dt.datetime | None = None
        self.renewed_at: dt.datetime | None = None
        self.lease_until: dt.datetime | None = None

    def take(self) -> dict[str, int]:
        """At start, in one transaction: take the lease (or raise :class:`NodeNameInUse`)
        and pause this node's agents left working (:func:`pause_own_agents`)."""
        now = self.clock()
        until = core.expires(now, self.lease_seconds)
        try:
            with transaction(self.sessions) as s:
                row = s.get(m.Node, self.name, with_for_update=True)
                held = _lease(row)
                problem = core.refusal(
                    held,
                    now,
                    self.host,
                    pid_alive=held is not None and held.host == self.host and self.alive(held.pid),
                )
                if problem:
                    raise NodeNameInUse(problem)
                if row is None:
                    row = m.Node(name=self.name)
                    s.add(row)
                row.host, row.pid = self.host, self.pid
                row.started_at = row.heartbeat_at = now
                row.lease_until = until
                row.taken_over_at = None
                s.flush()  # a concurrent first start collides here (primary key)
                paused = pause_own_agents(s, self.name, now)
        except IntegrityError:
            raise NodeNameInUse(
                f"node name {self.name!r} was taken by another serve starting at the same "
                "time: set another [node] name, or stop that one"
            ) from None
        self.started_at = self.renewed_at = now
        self.lease_until = until
        return {"agents_paused": paused}

    def renew(self) -> dt.datetime:
        """Push the lease forward; :class:`LeaseLost` if the row is no longer ours."""
        now = self.clock()
        until = core.expires(now, self.lease_seconds)
        with transaction(self.sessions) as s:
            row = s.get(m.Node, self.name, with_for_update=True)
            if (
                row is None
                or self.started_at is None
                or not core.still_ours(_lease(row), self.host, self.pid, self.started_at)
            ):
                raise LeaseLost(f"node name {self.name!r} is held by another serve now")
            row.heartbeat_at = now
            row.lease_until = until
        self.renewed_at, self.lease_until = now, until
        return until

    def release(self) -> None:
        """On a clean stop: the lease ends now (only if it is still ours)."""
        if self.started_at is None:
            return
        now = self.clock()
        with transaction(self.sessions) as s:
            row = s.get(m.Node, self.name, with_for_update=True)
            if row is not None and core.still_ours(
                _lease(row), self.host, self.pid, self.started_at
            ):
                row.heartbeat_at = now
                row.lease_until = now
        self.started_at = None


def running_serves(
    s: Session, now: dt.datetime, host: str | None = None, alive: Callable[[int], bool] = pid_alive
) -> list[tuple[str, int, str]]:
    """(node, pid, host) of every serve on this database that a start of the same node
    would refuse: a live lease whose process still runs (or on another host, where it
    cannot be checked)."""
    host = host or socket.gethostname()
    found = []
    for row in s.scalars(select(m.Node).order_by(m.Node.name)):
        held = _lease(row)
        if core.refusal(held, now, host, pid_alive=held.host == host and alive(held.pid)):
            found.append((row.name, row.pid, row.host))
    return found


def second_node_on_sqlite(
    s: Session,
    name: str,
    now: dt.datetime,
    host: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
) -> str | None:
    """Why a serve as node ``name`` must not start on this SQLite database, or None.

    Several nodes need PostgreSQL (row locks, LISTEN/NOTIFY): on SQLite a second serve
    under another name ran beside the first, both on one Stasis app, and their call ids
    collided (a lost arrival row, a failed dialer claim). The same name is the lease's
    refusal (:meth:`NodeLease.take`)."""
    if s.get_bind().dialect.name != "sqlite":
        return None
    others = [r for r in running_serves(s, now, host, alive) if r[0] != name]
    if not others:
        return None
    other, pid, where = others[0]
    return (
        f"another serve (node {other!r}, pid {pid} on {where}) runs on this SQLite "
        "database: several nodes need PostgreSQL (docs/operations.md); stop that one, "
        "or give both a PostgreSQL database_url"
    )


def nodes_view(s: Session, now: dt.datetime) -> list[dict]:
    """Every node the database knows, live or down (for the panel and the CLI)."""
    return [
        {
            "name": row.name,
            "host": row.host,
            "pid": row.pid,
            "started_at": row.started_at,
            "heartbeat_at": row.heartbeat_at,
            "live": core.is_live(_lease(row), now),
            "taken_over_at": row.taken_over_at,
        }
        for row in s.scalars(select(m.Node).order_by(m.Node.name))
    ]
