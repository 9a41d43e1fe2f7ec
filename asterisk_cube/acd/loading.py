"""What the distributor keeps in memory of the configuration: agents with their status, grants
and skills, lines and their routes, pause reasons and open missed calls; loaded at start
(``load``), reread when ``db.config_version`` moves (``reload_config``: read in a worker
thread, applied on the loop in one step without disturbing calls in progress) or when a
line changes (``lines_changed``). A mixin of ``Distributor``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Set as AbstractSet

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import node_scope
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.config import ConfigSnapshot, LineRoute, read_config, route_of
from asterisk_cube.acd.state import (
    IDLE_STATES,
    REMOVED_PAUSE,
    LiveAgent,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core.phones import dial_endpoint
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class Loading(DistributorCore):
    # ------------------------------------------------------------- loading

    def load(self) -> None:
        """Read agents, their status and line choices, and line priorities. Agents logged
        in on another live node are not this node's (issue #14): left out."""
        with self._tx() as s:
            self._load_lines(s)
            self._load_desk_lists(s)
            foreign = node_scope.foreign_agent_ids(s, self.node, self.now())
            for agent in s.scalars(select(m.Agent).where(m.Agent.active.is_(True))):
                if agent.id not in foreign:
                    self._load_agent(s, agent)
        self._loaded = True

    def _load_lines(self, s: Session) -> None:
        self.line_priorities = {}
        self.line_info = {}
        self.line_routes = {}
        self.callback_routes = {}
        for line in s.scalars(select(m.Line)):
            self._remember_line(line)

    def _load_desk_lists(self, s: Session) -> None:
        """Pause reasons and unprocessed missed calls: read once, then kept in memory."""
        self.pause_reasons = [
            (r.code, r.label)
            for r in s.scalars(
                select(m.PauseReason)
                .where(m.PauseReason.system.is_(False))
                .order_by(m.PauseReason.label)
            )
        ]
        self.missed = {
            mc.id: (mc.line_id, mc.caller_number, mc.missed_at)
            for mc in s.scalars(
                select(m.MissedCall)
                .where(m.MissedCall.processed_at.is_(None))
                .order_by(m.MissedCall.missed_at.desc())
                .limit(1000)
            )
        }

    def _remember_line(self, line: m.Line) -> LineRoute:
        route = route_of(line)
        self.line_priorities[line.id] = line.priority
        self.line_info[line.id] = (line.did, line.name, line.offer_timeout_seconds)
        self.line_routes[line.id] = route
        return route

    def _load_agent(self, s: Session, agent: m.Agent) -> LiveAgent:
        row = agent.status
        if row is None:
            row = m.AgentStatus(agent_id=agent.id)
            s.add(row)
            s.flush()
        status = ag.AgentStatus(
            agent_id=agent.id,
            state=ag.AgentState(row.state.value),
            since=row.since,
            pause_reason=row.pause_reason,
            pause_requested=row.pause_requested,
            wrap_up_until=row.wrap_up_until,
            call_id=row.call_id,
            idle_since=row.idle_since,
        )
        card = row.call_id
        if row.node not in (None, self.node):  # a dead node's agent: not here until login
            status, card = ag.AgentStatus(agent_id=agent.id, since=row.since), None
        links = agent.line_links
        live = LiveAgent(
            agent_id=agent.id,
            username=agent.username,
            name=agent.name,
            role=agent.role.value,
            endpoint=dial_endpoint(agent.endpoint, agent.phone, agent.username),
            skills=frozenset(sk.name for sk in agent.skills),
            permitted=frozenset(link.line_id for link in links),
            chosen=frozenset(link.line_id for link in links if link.chosen),
            status=status,
            card_call_id=card,
        )
        self.agents[agent.id] = live
        return live

    def refresh_lines(self) -> None:
        """Reread the lines now, on the loop (one added since the last reload, or changed
        from the panel): the next decision follows them. ``serve`` reloads everything
        (agents too) through ``reload_config`` when ``db.config_version`` moves."""
        with self._read() as s:
            snap = read_config(s)
        self._take_lines(snap)

    def _agent(self, agent_id: int) -> LiveAgent:
        agent = self.agents.get(agent_id)
        if agent is None:
            with self._tx() as s:
                row = s.get(m.Agent, agent_id)
                if row is None or not row.active:
                    raise c.Refused(c.NOT_FOUND, "no such agent")
                if agent_id in node_scope.foreign_agent_ids(s, self.node, self.now()):
                    assert row.status is not None and row.status.node is not None
                    raise node_scope.OwnedByNode(row.status.node)
                agent = self._load_agent(s, row)
        return agent

    async def check_owner(self, agent_id: int) -> None:
        """Refuse (:class:`~node_scope.OwnedByNode`, 409 naming the owner) a desk here for
        an agent logged in on another live node, even if this node holds a logged-out copy
        of it (loaded before that login). An agent working here costs nothing; otherwise
        one row is read in a worker thread."""
        agent = self.agents.get(agent_id)
        if agent is not None and agent.status.state != ag.AgentState.LOGGED_OUT:
            return

        def read() -> str | None:
            with self._read() as s:
                return node_scope.owner_elsewhere(s, agent_id, self.node, self.now())

        owner = await asyncio.to_thread(read)
        if owner is not None:
            raise node_scope.OwnedByNode(owner)

    # ------------------------------------------------- configuration reload (CLI)

    async def reload_config(self) -> None:
        """The configuration changed in the database (``db.config_version``): read it in a
        worker thread, then apply it here on the loop in one step."""

        def read() -> tuple[ConfigSnapshot, set[int]]:
            with self._read() as s:
                return read_config(s), node_scope.foreign_agent_ids(s, self.node, self.now())

        self.apply_config(*await asyncio.to_thread(read))

    def apply_config(self, snap: ConfigSnapshot, foreign: AbstractSet[int] = frozenset()) -> None:
        """Take the configuration of ``snap`` and route by it from now on; ``foreign``:
        agents logged in on another live node, forgotten here while logged out here."""
        self._take_config(snap, foreign)
        self.contacts.card_config.forget()  # categories, topics, campaign names: re-read
        self.notifier.everyone()
        self.dispatch()

    def _take_lines(self, snap: ConfigSnapshot) -> set[int]:
        """Take the lines of ``snap``; removed lines with ongoing calls are kept (returned)."""
        live_lines = self.state.lines_in_use()
        retired = {i for i in self.line_routes if i not in snap.routes and i in live_lines}
        if retired:
            log.warning("removed_lines_kept_for_their_calls", lines=sorted(retired))
        routes = dict(snap.routes)
        info = dict(snap.line_info)
        for line_id in retired:
            routes[line_id] = self.line_routes[line_id]
            info[line_id] = self.line_info.get(line_id, (routes[line_id].did, "", 20))
        self.line_routes = routes
        self.line_info = info
        self.line_priorities = {i: r.priority for i, r in routes.items()}
        self.callback_routes = {}  # a campaign's skill or caller ID may have changed: re-read
        return retired

    def _take_config(self, snap: ConfigSnapshot, foreign: AbstractSet[int] = frozenset()) -> None:
        """Take lines, grants, skills, endpoints and pause reasons from ``snap`` without
        disturbing calls in progress:

        * a call already offered or connected stays with its agent, whatever changed;
        * a removed line whose callers are still waiting (or talking) stays known, and
          the agents who served it keep it, until those calls are over: its callers are
          still answered, none is dropped; new calls cannot reach it (the DID is gone
          from the dialplan at the next ``dialplan install``);
        * a line revoked from an agent leaves the agent's chosen lines; a newly granted
          line is chosen if the grant says so; lines kept keep the desk's choice;
        * a removed or deactivated agent is forgotten at once unless it has a call (an
          offer, a call, its wrap-up): then it keeps that call but gets no lines and no
          skills (no new work), is paused after it, and is forgotten at the next reload;
        * an agent added since is loaded (as ``load`` does);
        * an agent logged in on another live node (``foreign``) and logged out here is
          forgotten here (issue #14: a node routes and dials for its own agents only).
        """
        retired = self._take_lines(snap)
        self.pause_reasons = list(snap.pause_reasons)
        with_calls = self.state.agents_with_calls()
        for agent_id, live in list(self.agents.items()):
            cfg = snap.agents.get(agent_id)
            if agent_id in foreign and live.status.state == ag.AgentState.LOGGED_OUT:
                del self.agents[agent_id]
                continue
            kept = live.permitted & retired
            if cfg is None:  # removed or deactivated
                state = live.status.state
                if (
                    state in IDLE_STATES
                    and not live.on_outbound_call
                    and agent_id not in with_calls  # e.g. a call it forwarded
                ):
                    del self.agents[agent_id]  # no call to finish: forgotten now
                    continue
                live.permitted, live.chosen = kept, live.chosen & kept
                live.skills = frozenset()
                busy = state in (ag.AgentState.BUSY, ag.AgentState.WRAP_UP)
                if busy and not live.status.pause_requested:  # paused, not ready, after it
                    self._apply(live, ag.Pause(reason=REMOVED_PAUSE))
                continue
            before = live.permitted
            live.permitted = cfg.permitted | kept
            live.chosen = frozenset(
                line_id
                for line_id in live.permitted
                if (line_id in live.chosen if line_id in before else line_id in cfg.chosen)
            )
            live.username, live.name, live.role = cfg.username, cfg.name, cfg.role
            live.endpoint, live.skills = cfg.endpoint, cfg.skills
        for agent_id in snap.agents.keys() - self.agents.keys() - foreign:
            with contextlib.suppress(c.Refused):  # removed again meanwhile
                self._agent(agent_id)

    def lines_changed(self) -> None:
        """A line's priority (or name) changed in the database, e.g. from the panel:
        reload, show it to the agents, and route by it from the next decision on."""
        self.refresh_lines()
        self.notifier.everyone()
        self.dispatch()
