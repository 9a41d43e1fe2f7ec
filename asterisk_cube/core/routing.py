"""Inbound routing (F-I2..F-I5, F-D2, F-E6): which waiting call goes to which agent next.

The Stasis app keeps callers waiting in holding bridges; whenever something
changes (a call arrives, an agent becomes ready, an offer times out, a
supervisor changes a line priority) it asks :func:`assignments` what to offer
now and carries that out. Everything is decided here from plain snapshots, so
the same rules are unit-tested, used after a restart, and shown on the panel.

Call order (most urgent first):

1. call type: customer callback > new customer (hotline) > service /
   answering-service call (F-I3);
2. line priority: **higher number first** (the ``lines.priority`` column; a
   supervisor may change it, so priorities are passed in per decision, not
   frozen into the calls);
3. longest wait (``queued_at``), then call id for a stable order.

Agent choice for a call:

- a scheduled callback reserved for an agent (F-E6) goes only to that agent
  until ``reserved_until``; if that agent is logged out, the reservation does
  not hold and anyone eligible may take it;
- otherwise the agent who last talked to the contact (``last_agent_id``, set
  for customer callbacks) if eligible right now — there is no waiting for a
  busy favourite;
- otherwise the eligible agent idle longest (``idle_since``), then lowest id.

Eligible = logged in and ready, not blocked (F-I5: on an outbound call or the
dialer dialing for it), *serves* the call, and has not let an offer of this
call lapse since it last changed state (an offer that timed out or was
declined moves on to the next agent; once the agent comes back from the
resulting pause it may be offered the call again).

An agent *serves* a call when:

- customer callback: it holds the campaign's skill (the campaign's agents,
  F-D2) — the line choice is not needed, the call belongs to the campaign;
  with no skill on the campaign, it must have chosen the line; a call to the
  campaign's caller ID has no line (``line_id`` None): with no skill on the
  campaign every agent serves it;
- new customer / service / answering: it has chosen the line (F-I2) and holds
  the call's skill if one applies.

:func:`assignments` is greedy in call order: each call in turn gets its best
agent among those still free. The top call always gets its preferred agent; a
lower call that could only use that same agent waits for the next round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .agents import AgentState

CallId = int | str


class CallType(StrEnum):
    CUSTOMER_CALLBACK = "customer_callback"
    NEW_CUSTOMER = "new_customer"
    SERVICE = "service"
    ANSWERING = "answering"  # answering-service client call: ranked like a service call


TYPE_RANK: Mapping[CallType, int] = {
    CallType.CUSTOMER_CALLBACK: 0,
    CallType.NEW_CUSTOMER: 1,
    CallType.SERVICE: 2,
    CallType.ANSWERING: 2,
}


@dataclass(frozen=True)
class WaitingCall:
    """A caller waiting for an agent."""

    call_id: CallId
    call_type: CallType
    queued_at: datetime
    line_id: int | None = None  # the DID dialled (None for a callback with no line of its own)
    skill: str | None = None  # required skill (the campaign's, F-D2)
    campaign_id: int | None = None
    last_agent_id: int | None = None  # affinity: who last talked to this contact
    reserved_for: int | None = None  # F-E6 reservation ...
    reserved_until: datetime | None = None  # ... until then
    declined: tuple[tuple[int, datetime], ...] = ()  # (agent, when) offers not accepted
    offered_to: int | None = None  # an offer is pending: not routable meanwhile


@dataclass(frozen=True)
class AgentView:
    """What routing needs to know about an agent (built from ``AgentStatus`` + profile)."""

    agent_id: int
    state: AgentState
    lines: frozenset[int] = frozenset()  # lines chosen for this session (F-I2)
    skills: frozenset[str] = frozenset()
    since: datetime | None = None  # when it entered its current state
    idle_since: datetime | None = None  # for "idle longest"
    on_outbound_call: bool = False
    dialer_dialing: bool = False  # the predictive dialer is dialing for this agent
    # lines it may serve (F-I1), chosen or not: the desk shows their queues
    permitted: frozenset[int] = frozenset()

    @property
    def blocked(self) -> bool:
        """F-I5: inbound is blocked (the agent still sees calls waiting)."""
        return self.on_outbound_call or self.dialer_dialing

    @property
    def logged_in(self) -> bool:
        return self.state is not AgentState.LOGGED_OUT


class AssignReason(StrEnum):
    RESERVED = "reserved"  # scheduled callback reserved for this agent
    LAST_AGENT = "last_agent"  # affinity: last talked to the contact
    LONGEST_IDLE = "longest_idle"


@dataclass(frozen=True)
class Assignment:
    call_id: CallId
    agent_id: int
    reason: AssignReason


# ----------------------------------------------------------------- ordering


def call_order_key(
    call: WaitingCall, line_priorities: Mapping[int, int] | None = None
) -> tuple[Any, ...]:
    """Sort key: type rank, higher line priority, longer wait, call id."""
    priority = (line_priorities or {}).get(call.line_id, 0) if call.line_id is not None else 0
    return (TYPE_RANK[call.call_type], -priority, call.queued_at, str(call.call_id))


def ordered(
    calls: Iterable[WaitingCall], line_priorities: Mapping[int, int] | None = None
) -> list[WaitingCall]:
    return sorted(calls, key=lambda c: call_order_key(c, line_priorities))


# ------------------------------------------------------------- eligibility


def serves(agent: AgentView, call: WaitingCall) -> bool:
    """Could this agent take this call if it were ready (ignores state and blocking)?"""
    if call.call_type is CallType.CUSTOMER_CALLBACK and call.skill is not None:
        return call.skill in agent.skills
    if call.call_type is CallType.CUSTOMER_CALLBACK and call.line_id is None:
        return True  # to the caller ID of a campaign without a skill: anyone may take it
    if call.line_id is None or call.line_id not in agent.lines:
        return False
    return call.skill is None or call.skill in agent.skills


def shown_to(agent: AgentView, call: WaitingCall) -> bool:
    """Does this agent's desk count this call as waiting for it: ``serves`` over every line
    it may serve (``permitted``), chosen or not, logged in or not: an agent choosing its
    lines sees where callers wait (F-I2), a blocked, busy or paused one still sees them
    (F-I5). Routing itself (``eligible``) keeps to the chosen lines."""
    if call.line_id is not None and call.line_id in agent.permitted:
        return call.skill is None or call.skill in agent.skills
    return serves(agent, call)


def lapsed_offer(agent: AgentView, call: WaitingCall) -> bool:
    """True if the agent let an offer of this call lapse and has not changed state since."""
    return any(
        agent_id == agent.agent_id and (agent.since is None or at >= agent.since)
        for agent_id, at in call.declined
    )


def available(agent: AgentView, call: WaitingCall) -> bool:
    """Ready, not blocked and not just passed over for this call (no line/skill check)."""
    return agent.state is AgentState.READY and not agent.blocked and not lapsed_offer(agent, call)


def eligible(agent: AgentView, call: WaitingCall) -> bool:
    return serves(agent, call) and available(agent, call)  # the cheap test first


def reservation_holds(call: WaitingCall, agents: Sequence[AgentView], now: datetime) -> bool:
    """A reservation binds while it lasts and its agent is logged in."""
    if call.reserved_for is None:
        return False
    if call.reserved_until is not None and now >= call.reserved_until:
        return False
    return any(a.agent_id == call.reserved_for and a.logged_in for a in agents)


def _idle_key(agent: AgentView, now: datetime) -> tuple[Any, ...]:
    idle = agent.idle_since or agent.since or now
    return (idle, agent.agent_id)


def ready_agents(agents: Iterable[AgentView]) -> list[AgentView]:
    """The agents that could be offered a call now (ready and not blocked)."""
    return [a for a in agents if a.state is AgentState.READY and not a.blocked]


def pick_agent(
    call: WaitingCall,
    agents: Sequence[AgentView],
    now: datetime,
    taken: frozenset[int] | set[int] = frozenset(),
    ready: Sequence[AgentView] | None = None,
) -> Assignment | None:
    """The best agent for one call (see module docstring), skipping ``taken`` agents.
    ``ready``: the agents to consider, default ``ready_agents(agents)``; a narrower list
    must still hold every ready agent that serves the call (``assignments`` passes the
    call's line's agents)."""
    if call.offered_to is not None:
        return None
    free = [
        a for a in (ready_agents(agents) if ready is None else ready) if a.agent_id not in taken
    ]
    if reservation_holds(call, agents, now):
        for agent in free:
            if agent.agent_id == call.reserved_for and available(agent, call):
                return Assignment(call.call_id, agent.agent_id, AssignReason.RESERVED)
        return None
    candidates = [a for a in free if eligible(a, call)]
    if not candidates:
        return None
    if call.last_agent_id is not None:
        for agent in candidates:
            if agent.agent_id == call.last_agent_id:
                return Assignment(call.call_id, agent.agent_id, AssignReason.LAST_AGENT)
    best = min(candidates, key=lambda a: _idle_key(a, now))
    return Assignment(call.call_id, best.agent_id, AssignReason.LONGEST_IDLE)


def assignments(
    calls: Iterable[WaitingCall],
    agents: Sequence[AgentView],
    now: datetime,
    line_priorities: Mapping[int, int] | None = None,
) -> tuple[Assignment, ...]:
    """Every offer that can be made now, greedily in call order; each agent at most once."""
    ready = ready_agents(agents)
    taken: set[int] = set()
    result = []
    if not ready:
        return ()
    # Who serves a call depends only on this key (see ``serves``): with many calls waiting
    # on a few lines, each line's agents are found once per decision, not once per call.
    serving: dict[tuple[Any, ...], list[AgentView]] = {}
    for call in ordered(calls, line_priorities):
        if len(taken) == len(ready):
            break  # every agent who could take a call has one now
        if call.reserved_for is not None:
            pool = ready  # a reserved agent needs no line choice
        else:
            callback = call.call_type is CallType.CUSTOMER_CALLBACK
            key = (
                callback and (call.skill is not None or call.line_id is None),
                call.line_id,
                call.skill,
            )
            found = serving.get(key)
            if found is None:
                found = serving[key] = [a for a in ready if serves(a, call)]
            pool = found
            if not pool:
                continue
        choice = pick_agent(call, agents, now, taken, pool)
        if choice is not None:
            taken.add(choice.agent_id)
            result.append(choice)
    return tuple(result)


def next_assignment(
    calls: Iterable[WaitingCall],
    agents: Sequence[AgentView],
    now: datetime,
    line_priorities: Mapping[int, int] | None = None,
) -> Assignment | None:
    """The single most urgent offer to make now, if any."""
    for call in ordered(calls, line_priorities):
        choice = pick_agent(call, agents, now)
        if choice is not None:
            return choice
    return None


def next_call_for_agent(
    calls: Iterable[WaitingCall],
    agents: Sequence[AgentView],
    agent_id: int,
    now: datetime,
    line_priorities: Mapping[int, int] | None = None,
) -> Assignment | None:
    """The call this agent should be offered now, consistent with :func:`assignments`."""
    for choice in assignments(calls, agents, now, line_priorities):
        if choice.agent_id == agent_id:
            return choice
    return None


# ------------------------------------------------------------ offer helpers


def offered(call: WaitingCall, agent_id: int) -> WaitingCall:
    """The call with an offer pending to ``agent_id``."""
    return replace(call, offered_to=agent_id)


def offer_lapsed(call: WaitingCall, agent_id: int, now: datetime) -> WaitingCall:
    """The call after its offer to ``agent_id`` timed out or was declined: routable again,
    and not offered to that agent again until it changes state."""
    return replace(call, offered_to=None, declined=(*call.declined, (agent_id, now)))


def offer_withdrawn(call: WaitingCall) -> WaitingCall:
    """The call after an offer was withdrawn without the agent's fault."""
    return replace(call, offered_to=None)


# ----------------------------------------------------------------- counters


@dataclass(frozen=True)
class LineWaiting:
    """Calls waiting on one line (``None``: callbacks without a line) and the oldest one."""

    line_id: int | None
    count: int
    oldest_queued_at: datetime | None = None
    call_ids: tuple[CallId, ...] = field(default=(), compare=False)


def _by_line(calls: Iterable[WaitingCall]) -> tuple[LineWaiting, ...]:
    groups: dict[int | None, list[WaitingCall]] = {}
    for call in calls:
        groups.setdefault(call.line_id, []).append(call)
    out = []
    for line_id in sorted(groups, key=lambda x: (x is None, x or 0)):
        items = sorted(groups[line_id], key=lambda c: c.queued_at)
        out.append(
            LineWaiting(line_id, len(items), items[0].queued_at, tuple(c.call_id for c in items))
        )
    return tuple(out)


def waiting_by_line(calls: Iterable[WaitingCall]) -> tuple[LineWaiting, ...]:
    """All waiting calls per line with the longest wait (for the panel, F-M1)."""
    return _by_line(calls)


def waiting_for_agent(
    calls: Iterable[WaitingCall],
    agents: Sequence[AgentView],
    agent_id: int,
    now: datetime,
) -> tuple[LineWaiting, ...]:
    """Calls waiting on the lines this agent may serve (``shown_to``), per line: shown
    whether it chose them or not, and even while it is logged out, blocked, busy or paused
    (F-I2, F-I5). Calls reserved for another agent are left out."""
    me = next((a for a in agents if a.agent_id == agent_id), None)
    if me is None:
        return ()
    mine = []
    for call in calls:
        if reservation_holds(call, agents, now):
            if call.reserved_for == agent_id:
                mine.append(call)
        elif shown_to(me, call):
            mine.append(call)
    return _by_line(mine)


def waiting_on_line(
    calls: Iterable[WaitingCall],
    agents: Sequence[AgentView],
    line_id: int,
    now: datetime,
) -> dict[int, LineWaiting | None]:
    """``waiting_for_agent``'s entry for one line, for each of ``agents`` at once (None: no
    call there for it): a change in one line's queue updates the count on every desk that
    shows it without building each desk's view (issue #19). The agents a waiting call is
    reserved for must be among ``agents``."""
    on_line = [call for call in calls if call.line_id == line_id]
    held = {
        call.call_id: call.reserved_for for call in on_line if reservation_holds(call, agents, now)
    }
    out: dict[int, LineWaiting | None] = {}
    for agent in agents:
        mine = [
            call
            for call in on_line
            if (
                held[call.call_id] == agent.agent_id
                if call.call_id in held
                else shown_to(agent, call)
            )
        ]
        out[agent.agent_id] = _by_line(mine)[0] if mine else None
    return out
