"""The whole center on every node's panel (issue #14, docs/architecture.md "The panel
shows the whole center").

Each node's distributor knows its own agents and calls only. :class:`CenterView` keeps
a copy of the other nodes' rows: every node (name, host, started, heartbeat, live or
down), the agents logged in on another node (``agent_status``) and the calls another
node is handling (``calls`` not ended). It re-reads them in a worker thread, never per
request and never on the event loop:

* when woken by a notification on :data:`CHANNEL` (PostgreSQL ``NOTIFY``, received on
  the ``ConfigWatcher``'s LISTEN connection): each node's write-behind journal sends
  one with every batch while another node is live (:meth:`CenterView.notify_hook`);
* at each lease renewal (``node_lease``), so a node that stopped renewing shows as down;

a burst of wake-ups is coalesced into one read (``coalesce``, 200 ms). A change
publishes :class:`CenterChanged`, on which the ``PanelFeed`` rebuilds and patches; the
merge (:func:`merge`) adds a ``nodes`` section and puts the other nodes' agents and
calls beside the local ones, each marked with its ``node`` and ``node_down``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.db import models as m
from asterisk_cube.db.models import utcnow
from asterisk_cube.db.session import transaction
from asterisk_cube.events import Event, EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.services.nodes import nodes_view

log = get_logger(__name__)

CHANNEL = "asterisk_cube_center"
LIVE_CALLS = (m.CallState.WAITING, m.CallState.OFFERED, m.CallState.DIALING, m.CallState.CONNECTED)
PHASE = {"dialing": "connecting"}
_NOTIFY = text("SELECT pg_notify(:channel, :node)")  # a call row's state as the panel's call phase


@dataclass(frozen=True)
class CenterChanged(Event):
    """Another node's agents, calls or the nodes' liveness changed."""


@dataclass(frozen=True)
class CenterRows:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def _epoch(value: dt.datetime | None) -> float | None:
    return round(value.timestamp(), 3) if value is not None else None


def read_center(s: Session, me: str, now: dt.datetime) -> CenterRows:
    """The nodes, and the other nodes' logged-in agents and unfinished calls."""
    nodes = [
        {
            "name": n["name"],
            "host": n["host"],
            "started": _epoch(n["started_at"]),
            "heartbeat": _epoch(n["heartbeat_at"]),
            "live": n["live"],
            "taken_over": _epoch(n["taken_over_at"]),
            "me": n["name"] == me,
        }
        for n in nodes_view(s, now)
    ]
    st, a = m.AgentStatus, m.Agent
    agents = []
    for row in s.execute(
        select(
            a.id,
            a.username,
            a.name,
            a.role,
            st.state,
            st.since,
            st.pause_reason,
            st.pause_requested,
            st.wrap_up_until,
            st.call_id,
            st.node,
            a.endpoint,
            st.device,
            st.device_since,
        )
        .join(st, st.agent_id == a.id)
        .where(st.node.is_not(None), st.node != me, st.state != m.AgentState.LOGGED_OUT)
        .order_by(a.id)
    ):
        agents.append(
            {
                "id": row.id,
                "username": row.username,
                "name": row.name,
                "role": row.role.value,
                "state": row.state.value,
                "since": _epoch(row.since),
                "pause_reason": row.pause_reason,
                "pause_requested": row.pause_requested,
                "wrap_up_until": _epoch(row.wrap_up_until),
                "call_id": row.call_id,
                "endpoint": row.endpoint,
                "node": row.node,
                "device": row.device,  # its phone, as its node's Asterisk says
                "device_since": _epoch(row.device_since),
            }
        )
    chosen: dict[int, list[int]] = {}
    ids = [x["id"] for x in agents]
    if ids:
        for agent_id, line_id in s.execute(
            select(m.AgentLine.agent_id, m.AgentLine.line_id).where(
                m.AgentLine.agent_id.in_(ids), m.AgentLine.chosen.is_(True)
            )
        ):
            chosen.setdefault(agent_id, []).append(line_id)
    for x in agents:
        x["lines"] = sorted(chosen.get(x["id"], []))
    c = m.Call
    calls = [
        {
            "id": row.id,
            "direction": row.direction.value,
            "kind": row.kind.value,
            "phase": PHASE.get(row.state.value, row.state.value),
            "line_id": row.line_id,
            "campaign_id": row.campaign_id,
            "caller": row.caller_number,
            "did": row.dialed_number,
            "queued_at": _epoch(row.queued_at),
            "answered_at": _epoch(row.answered_at),
            "agent_id": row.agent_id,
            "node": row.node,
        }
        for row in s.execute(
            select(
                c.id,
                c.direction,
                c.kind,
                c.state,
                c.line_id,
                c.campaign_id,
                c.caller_number,
                c.dialed_number,
                c.queued_at,
                c.answered_at,
                c.agent_id,
                c.node,
            )
            .where(c.node.is_not(None), c.node != me, c.ended_at.is_(None), c.state.in_(LIVE_CALLS))
            .order_by(c.id)
            .limit(1000)
        )
    ]
    return CenterRows(nodes, agents, calls)


def merge(state: dict[str, dict[str, Any]], rows: CenterRows, me: str) -> None:
    """Add the whole center to a panel ``state`` built from the local distributor. With
    no other node known, only the ``nodes`` section (this one) is added."""
    for n in rows.nodes:
        state["nodes"][n["name"]] = n
    if not any(not n["me"] for n in rows.nodes):
        return
    live = {n["name"]: n["live"] for n in rows.nodes}
    for item in state["agents"].values():
        item["node"], item["node_down"] = me, False
    for item in state["calls"].values():
        item["node"], item["node_down"] = me, False
    for agent in rows.agents:
        key = str(agent["id"])
        local = state["agents"].get(key)
        if local is not None and local["state"] != "logged_out":
            continue  # ours (its row may lag the journal): the live copy wins
        base = local or {"permitted": [], "blocked": False, "device": None}
        state["agents"][key] = {
            **base,
            **agent,
            "channel": None,
            "node_down": not live.get(agent["node"], False),
        }
    for call in rows.calls:
        key = str(call["id"])
        if key not in state["calls"]:
            state["calls"][key] = {
                "offered_at": None,
                **call,
                "node_down": not live.get(call["node"], False),
            }


Devices = dict[int, tuple[str, float]]  # agent id -> (device state, since: epoch s)


def own_devices(acd: Any, ami: Any) -> Devices:
    """This node's logged-in agents' phones as its own Asterisk (AMI) reports them: what
    the local panel shows for them, and what the other nodes' panels get through
    ``agent_status.device`` (:meth:`CenterView.sync_devices`)."""
    found: Devices = {}
    for agent_id, agent in acd.agents.items():
        if agent.status.state.value == "logged_out" or not agent.endpoint:
            continue
        dev = ami.devices.get(agent.endpoint)
        if dev is not None:
            found[agent_id] = (dev.state, dev.since)
    return found


def write_devices(s: Session, me: str, changed: Devices) -> None:
    """Store the changed devices on the agents' status rows (only rows this node owns),
    and tell the other nodes' panels."""
    st = m.AgentStatus
    for agent_id, (state, since) in changed.items():
        s.execute(
            update(st)
            .where(st.agent_id == agent_id, st.node == me)
            .values(device=state, device_since=dt.datetime.fromtimestamp(since, dt.UTC))
            .execution_options(synchronize_session=False)
        )
    if s.get_bind().dialect.name == "postgresql":
        s.execute(_NOTIFY, {"channel": CHANNEL, "node": me})


class CenterView:
    """The other nodes' rows for this node's panel, re-read off the loop when woken."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        hub: EventHub,
        me: str,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        coalesce: float = 0.2,
    ) -> None:
        self.sessions = sessions
        self.hub = hub
        self.me = me
        self.clock = clock
        self.coalesce = coalesce
        self.rows = CenterRows()
        self.others_live = False  # another node is live: the journal notifies it
        self.reads = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        #: this node's agents' phones (set by the wiring: :func:`own_devices`)
        self.devices: Callable[[], Devices] | None = None
        self.devices_written: Devices = {}
        self._devices_due: asyncio.Event | None = None

    def read(self) -> CenterRows:
        with transaction(self.sessions) as s:
            return read_center(s, self.me, self.clock())

    def poke(self) -> None:
        """Re-read soon (on the loop)."""
        if self._wake is not None:
            self._wake.set()

    def poke_threadsafe(self) -> None:
        """Re-read soon (from any thread: the LISTEN thread, the lease's worker)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.poke)

    def notify_hook(self, s: Session) -> None:
        """In a journal batch's transaction: tell the other nodes (PostgreSQL only, and
        only while another node is live: a single node sends nothing)."""
        if self.others_live and s.get_bind().dialect.name == "postgresql":
            s.execute(
                text("SELECT pg_notify(:channel, :node)"), {"channel": CHANNEL, "node": self.me}
            )

    def devices_changed(self) -> Devices:
        """The own agents' devices to write now: those changed since the last write, while
        another node is live on PostgreSQL (a single node writes nothing; when one
        appears, everything is written once)."""
        if self.devices is None or not self.others_live:
            self.devices_written = {}
            return {}
        now = self.devices()
        return {k: v for k, v in now.items() if self.devices_written.get(k) != v}

    async def sync_devices(self) -> None:
        changed = self.devices_changed()
        if not changed:
            return

        def write() -> None:
            with transaction(self.sessions) as s:
                write_devices(s, self.me, changed)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # the database is away: the next change retries
            log.warning("panel_devices_write_failed", error=repr(exc))
            return
        self.devices_written.update(changed)

    async def _devices_loop(self) -> None:
        """Write the own agents' device changes (AMI), coalesced like the reads."""
        from asterisk_cube.ami.model import AmiChanged

        sub = self.hub.subscribe(AmiChanged, maxsize=256, name="panel-nodes-devices")
        try:
            while True:
                await sub.get()
                await asyncio.sleep(self.coalesce)
                while sub.get_nowait() is not None:
                    pass
                sub.take_stale()
                await self.sync_devices()
        except EOFError:  # the hub closed: serve stops
            return
        finally:
            sub.close()

    async def run(self, state: Any = None) -> None:
        """The component: read at start, then whenever poked (coalesced); the own
        agents' phones are written when AMI reports a change and after each read."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()
        devices = asyncio.create_task(self._devices_loop())
        try:
            await self._read_loop()
        finally:
            devices.cancel()

    async def _read_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.coalesce)  # a burst of notifications: one read
            self._wake.clear()
            try:
                rows = await asyncio.to_thread(self.read)
            except Exception as exc:  # the database is away: the next poke retries
                log.warning("panel_center_read_failed", error=repr(exc))
                continue
            self.reads += 1
            self.others_live = any(n["live"] and not n["me"] for n in rows.nodes)
            if rows != self.rows:
                self.rows = rows
                self.hub.publish(CenterChanged())
            await self.sync_devices()  # e.g. an agent logged in since: its phone too
