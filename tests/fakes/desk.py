"""An in-memory :class:`AgentDesk` for web tests (unit and browser).

It behaves like a small distributor: calls queue per line and are offered to the ready
agent idle longest that serves the line and is not blocked; accept -> busy (the phone
"answers" at once unless ``auto_answer=False``); hangup -> wrap-up; a caller hanging up
in queue -> a missed call for everybody on that line; forced registration refuses
``close_call`` until the enquiry is registered; only permitted lines can be chosen.
Every refusal is a :class:`Refused` and changes nothing (see :meth:`snapshot`).
``tests/unit/test_desk_contract.py`` runs the same scenarios against this and the real
distributor: where they differ the distributor is right (a second login or logout is a
no-op, ready works from logged out and without lines, hang-up while the phone rings is
refused, a call that is over is "not found", wrap-up extends by up to an hour).

Test drivers (synchronous, call them on the event loop's thread — they publish on the
hub): :meth:`add_line`, :meth:`add_agent`, :meth:`add_contact`, :meth:`add_category`,
:meth:`incoming_call`, :meth:`caller_hangs_up`, :meth:`answer`, :meth:`set_blocked`,
:meth:`tick` (offer timeouts, wrap-up ends), :meth:`run_clock` (tick in the background).

Answering service (F-S2/F-S9): a line with ``client_id`` carries calls for that client
(``hours`` says open/closed/holiday for its calls); :meth:`set_forward_targets` gives the
targets a forward tries (per client, and per employee), :meth:`forward_outcome` plays what
the target does (``answered=True``: the agent announces; ``False``: the next target, or
failed when none is left); :meth:`set_own_numbers` lists the numbers a note refuses as the
callback number. Notes taken are kept in ``notes``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from asterisk_cube.acd.contract import (
    ILLEGAL_STATE,
    INVALID,
    NOT_FOUND,
    NOT_PERMITTED,
    REGISTRATION_REQUIRED,
    AgentView,
    AgentViewChanged,
    CallView,
    CategoryView,
    ContactView,
    ForwardView,
    LineView,
    MissedCallView,
    OfferView,
    Refused,
    TopicView,
)
from asterisk_cube.events import EventHub

PAUSE_REASONS = [
    ("break", "Break"),
    ("lunch", "Lunch"),
    ("training", "Training"),
    ("admin", "Admin"),
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FakeLine:
    line_id: int
    did: str
    name: str
    priority: int = 0
    forced_registration: bool = False
    campaign: str | None = None
    kind: str = "service"
    category_ids: list[int] | None = None  # None: every global category
    client_id: int | None = None  # an answering-service client's line (F-S1)
    hours: str = "open"  # open | closed | holiday for the calls on a client's line


@dataclass
class FakeAgent:
    agent_id: int
    username: str
    name: str
    role: str = "agent"
    permitted: list[int] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    state: str = "logged_out"
    since: dt.datetime = field(default_factory=utcnow)
    pause_reason: str | None = None
    pending_pause: str | None = None
    wrap_up_until: dt.datetime | None = None
    blocked: bool = False
    offer_call: int | None = None
    call: int | None = None  # the open call card
    idle_since: dt.datetime = field(default_factory=utcnow)


@dataclass
class FakeCall:
    call_id: int
    line_id: int
    caller: str
    kind: str
    queued_at: dt.datetime
    state: str = "waiting"  # waiting | offered | connecting | connected | ended | closed | missed
    agent_id: int | None = None
    offered_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    declined_by: set[int] = field(default_factory=set)
    contact_id: int | None = None
    registered: bool = False
    topic_ids: list[int] = field(default_factory=list)
    comment: str = ""
    outbound: bool = False
    forward: FakeForward | None = None
    notes: int = 0


@dataclass
class FakeForward:
    targets: list[str]
    index: int = 0
    status: str = "ringing"  # ringing | announcing | failed | connected

    def view(self) -> ForwardView:
        i = min(self.index, len(self.targets) - 1)
        return ForwardView(self.status, self.targets[i], i + 1, len(self.targets))


@dataclass
class FakeNote:
    agent_id: int
    call_id: int
    client_id: int
    message: str
    caller_name: str
    callback_number: str
    employee_id: int | None


@dataclass
class FakeMissed:
    missed_id: int
    call_id: int
    line_id: int
    caller: str
    missed_at: dt.datetime
    processed: bool = False
    called_back: bool = False


class FakeDesk:
    """See the module docstring. ``calls_log`` lists the desk methods that succeeded."""

    def __init__(
        self,
        hub: EventHub,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        offer_timeout: float = 30.0,
        wrap_up_seconds: int = 30,
        auto_answer: bool = True,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.offer_timeout = offer_timeout
        self.wrap_up_seconds = wrap_up_seconds
        self.auto_answer = auto_answer
        self.lines: dict[int, FakeLine] = {}
        self.agents: dict[int, FakeAgent] = {}
        self.calls: dict[int, FakeCall] = {}
        self.missed: dict[int, FakeMissed] = {}
        self.contacts: dict[int, ContactView] = {}
        self.categories: dict[int, CategoryView] = {}
        self.calls_log: list[tuple] = []
        self.notes: list[FakeNote] = []
        self.forward_targets: dict[tuple[int, int | None], list[str]] = {}
        self.own_numbers: dict[int, set[str]] = {}
        self._ids = itertools.count(1001)

    # --- setting up ---------------------------------------------------------------------

    def add_line(self, line_id: int, did: str, name: str, **kw) -> FakeLine:
        line = FakeLine(line_id, did, name, **kw)
        self.lines[line_id] = line
        return line

    def add_agent(
        self, agent_id: int, username: str, name: str, *, lines: Iterable[int] = (), role="agent"
    ) -> FakeAgent:
        agent = FakeAgent(agent_id, username, name, role, permitted=list(lines))
        self.agents[agent_id] = agent
        return agent

    def add_contact(self, phone: str, name: str | None = None, **kw) -> ContactView:
        contact = ContactView(
            contact_id=next(self._ids),
            phone=phone,
            name=name,
            company=kw.get("company"),
            email=kw.get("email"),
            campaign=kw.get("campaign"),
            status=kw.get("status", "new"),
        )
        self.contacts[contact.contact_id] = contact
        return contact

    def add_category(self, name: str, topics: list[str], *, multi: bool = False) -> CategoryView:
        cat = CategoryView(
            category_id=next(self._ids),
            name=name,
            multi=multi,
            campaign=None,
            topics=[TopicView(next(self._ids), t) for t in topics],
        )
        self.categories[cat.category_id] = cat
        return cat

    def set_forward_targets(
        self, client_id: int, targets: list[str], employee_id: int | None = None
    ) -> None:
        """Where a forward of this client's calls (or to this employee) rings; an empty list:
        that choice is a note, not a forward."""
        self.forward_targets[(client_id, employee_id)] = list(targets)

    def set_own_numbers(self, client_id: int, numbers: Iterable[str]) -> None:
        self.own_numbers[client_id] = set(numbers)

    def snapshot(self) -> dict:
        """Everything mutable, to assert that a refused request changed nothing."""
        return copy.deepcopy(
            {
                "agents": self.agents,
                "calls": self.calls,
                "missed": self.missed,
                "contacts": self.contacts,
                "notes": self.notes,
            }
        )

    # --- driving (tests) ------------------------------------------------------------------

    def incoming_call(self, line_id: int, caller: str, *, kind: str | None = None) -> int:
        line = self.lines[line_id]
        call = FakeCall(
            call_id=next(self._ids),
            line_id=line_id,
            caller=caller,
            kind=kind or line.kind,
            queued_at=self.clock(),
        )
        self.calls[call.call_id] = call
        self._dispatch()
        self._changed()
        return call.call_id

    def caller_hangs_up(self, call_id: int) -> None:
        call = self.calls[call_id]
        now = self.clock()
        if call.state in ("waiting", "offered"):
            if call.state == "offered" and call.agent_id is not None:
                agent = self.agents[call.agent_id]
                agent.offer_call = None
                self._set_state(agent, "ready", keep_idle=True)
            call.state = "missed"
            call.agent_id = None
            m = FakeMissed(next(self._ids), call_id, call.line_id, call.caller, now)
            self.missed[m.missed_id] = m
        elif call.state in ("connecting", "connected"):
            self._end_call(call)
        self._dispatch()
        self._changed()

    def answer(self, call_id: int) -> None:
        """The agent's phone answered (with ``auto_answer=False``)."""
        call = self.calls[call_id]
        if call.state == "connecting":
            call.state = "connected"
            call.answered_at = self.clock()
            self._changed()

    def forward_outcome(self, call_id: int, answered: bool) -> None:
        """The target being rung answers (the agent announces) or does not (next target)."""
        call = self.calls[call_id]
        fwd = call.forward
        if fwd is None or fwd.status != "ringing":
            raise AssertionError(f"no target is ringing for call {call_id}")
        if answered:
            fwd.status = "announcing"
        elif fwd.index + 1 < len(fwd.targets):
            fwd.index += 1
        else:
            fwd.status = "failed"
        self._changed([call.agent_id])  # type: ignore[list-item]

    def set_blocked(self, agent_id: int, blocked: bool) -> None:
        self.agents[agent_id].blocked = blocked
        self._dispatch()
        self._changed()

    def tick(self, now: dt.datetime | None = None) -> None:
        now = now or self.clock()
        changed = False
        for call in list(self.calls.values()):
            if call.state == "offered" and call.expires_at and call.expires_at <= now:
                agent = self.agents[call.agent_id]  # type: ignore[index]
                agent.offer_call = None
                agent.pause_reason = "no_answer"
                self._set_state(agent, "paused", reason="no_answer")
                call.declined_by.add(agent.agent_id)
                call.state, call.agent_id = "waiting", None
                changed = True
        for agent in self.agents.values():
            if agent.state == "wrap_up" and agent.wrap_up_until and agent.wrap_up_until <= now:
                card = self.calls.get(agent.call) if agent.call else None
                if card and self._needs_registration(card):
                    continue  # forced registration: stays in wrap-up until registered
                self._after_wrap_up(agent)
                changed = True
        if changed:
            self._dispatch()
            self._changed()

    async def run_clock(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()

    # --- internals ------------------------------------------------------------------------

    def _changed(self, agent_ids: Iterable[int] | None = None) -> None:
        for agent_id in agent_ids if agent_ids is not None else list(self.agents):
            self.hub.publish(AgentViewChanged(agent_id=agent_id))

    def _set_state(self, agent: FakeAgent, state: str, *, reason=None, keep_idle=False) -> None:
        agent.state = state
        agent.since = self.clock()
        agent.pause_reason = reason if state == "paused" else None
        if state != "wrap_up":
            agent.wrap_up_until = None
        if state == "ready" and not keep_idle:
            agent.idle_since = agent.since

    def _dispatch(self) -> None:
        waiting = sorted(
            (c for c in self.calls.values() if c.state == "waiting"),
            key=lambda c: (-self.lines[c.line_id].priority, c.queued_at, c.call_id),
        )
        for call in waiting:
            free = [
                a
                for a in self.agents.values()
                if a.state == "ready"
                and not a.blocked
                and call.line_id in a.chosen
                and a.agent_id not in call.declined_by
            ]
            if not free:
                continue
            agent = min(free, key=lambda a: (a.idle_since, a.agent_id))
            now = self.clock()
            call.state, call.agent_id = "offered", agent.agent_id
            call.offered_at = now
            call.expires_at = now + dt.timedelta(seconds=self.offer_timeout)
            agent.offer_call = call.call_id
            self._set_state(agent, "offered")

    def _agent(self, agent_id: int) -> FakeAgent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise Refused(NOT_FOUND, "no such agent")
        return agent

    def _card(self, agent: FakeAgent, call_id: int) -> FakeCall:
        call = self.calls.get(call_id)
        if call is None or agent.call != call_id or call.agent_id != agent.agent_id:
            raise Refused(NOT_FOUND, f"call {call_id} is not yours")
        return call

    def _needs_registration(self, call: FakeCall) -> bool:
        return self.lines[call.line_id].forced_registration and not call.registered

    def _end_call(self, call: FakeCall) -> None:
        call.state = "ended"
        agent = self.agents[call.agent_id]  # type: ignore[index]
        self._set_state(agent, "wrap_up")
        agent.wrap_up_until = self.clock() + dt.timedelta(seconds=self.wrap_up_seconds)

    def _after_wrap_up(self, agent: FakeAgent) -> None:
        if agent.pending_pause:
            reason, agent.pending_pause = agent.pending_pause, None
            self._set_state(agent, "paused", reason=reason)
        else:
            self._set_state(agent, "ready")

    def _categories_for(self, call: FakeCall) -> list[CategoryView]:
        wanted = self.lines[call.line_id].category_ids
        return [c for c in self.categories.values() if wanted is None or c.category_id in wanted]

    def _visible_missed(self, agent: FakeAgent, missed_id: int) -> FakeMissed:
        m = self.missed.get(missed_id)
        if m is None or m.processed or m.line_id not in agent.permitted:
            raise Refused(NOT_FOUND, f"missed call {missed_id} is not yours")
        return m

    def _log(self, *entry) -> None:
        self.calls_log.append(entry)

    # --- AgentDesk --------------------------------------------------------------------------

    async def check_owner(self, agent_id: int) -> None:
        """One node: every agent is this desk's."""

    async def view(self, agent_id: int) -> AgentView:
        agent = self._agent(agent_id)
        lines = []
        for line_id in agent.permitted:
            line = self.lines[line_id]
            waiting = [
                c for c in self.calls.values() if c.line_id == line_id and c.state == "waiting"
            ]
            oldest = min((c.queued_at for c in waiting), default=None)
            lines.append(
                LineView(
                    line_id=line_id,
                    did=line.did,
                    name=line.name,
                    priority=line.priority,
                    chosen=line_id in agent.chosen,
                    waiting=len(waiting),
                    longest_wait_s=(self.clock() - oldest).total_seconds() if oldest else 0.0,
                )
            )
        offer = None
        if agent.offer_call is not None:
            c = self.calls[agent.offer_call]
            line = self.lines[c.line_id]
            offer = OfferView(
                call_id=c.call_id,
                line=line.name,
                did=line.did,
                caller=c.caller,
                kind=c.kind,
                offered_at=c.offered_at,  # type: ignore[arg-type]
                expires_at=c.expires_at,  # type: ignore[arg-type]
            )
        card = None
        if agent.call is not None:
            c = self.calls[agent.call]
            line = self.lines[c.line_id]
            card = CallView(
                call_id=c.call_id,
                state="ended" if c.state == "ended" else c.state,
                line=line.name,
                did=line.did,
                caller=c.caller,
                kind=c.kind,
                campaign=line.campaign,
                client_id=line.client_id,
                contacts=[x for x in self.contacts.values() if x.phone == c.caller],
                contact_id=c.contact_id,
                categories=self._categories_for(c),
                registration_required=line.forced_registration,
                registered=c.registered,
                answered_at=c.answered_at,
                comment=c.comment,
                hours=line.hours if line.client_id is not None else "",
                forward=c.forward.view() if c.forward else None,
                notes=c.notes,
            )
        missed = [
            MissedCallView(m.missed_id, self.lines[m.line_id].name, m.caller, m.missed_at)
            for m in sorted(self.missed.values(), key=lambda m: m.missed_at)
            if not m.processed and m.line_id in agent.permitted
        ]
        return AgentView(
            agent_id=agent.agent_id,
            username=agent.username,
            name=agent.name,
            role=agent.role,
            state=agent.state,
            since=agent.since,
            pause_reason=agent.pause_reason,
            wrap_up_until=agent.wrap_up_until,
            blocked=agent.blocked,
            lines=lines,
            offer=offer,
            call=card,
            missed=missed,
            pause_reasons=list(PAUSE_REASONS),
            pause_requested=agent.pending_pause,
        )

    async def login(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.state != "logged_out":
            return  # already working: nothing to do (as the distributor)
        self._set_state(agent, "paused", reason="login")
        self._log("login", agent_id)
        self._changed([agent_id])

    async def logout(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.state == "logged_out":
            return  # not working: nothing to do (as the distributor)
        if agent.state in ("offered", "busy") or agent.call is not None:
            raise Refused(ILLEGAL_STATE, "finish the call first")
        self._set_state(agent, "logged_out")
        agent.pending_pause = None
        self._log("logout", agent_id)
        self._changed([agent_id])

    async def choose_lines(self, agent_id: int, line_ids: list[int]) -> None:
        agent = self._agent(agent_id)  # also before work starts (as the distributor)
        bad = [i for i in line_ids if i not in agent.permitted]
        if bad:
            raise Refused(NOT_PERMITTED, f"line_ids: not permitted: {bad}")
        agent.chosen = list(line_ids)
        self._log("choose_lines", agent_id, tuple(line_ids))
        self._dispatch()
        self._changed()

    async def ready(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.state == "wrap_up":
            await self.finish_wrap_up(agent_id)
            return
        # logged out: work starts ready; no lines chosen: ready, offered nothing (as the
        # distributor)
        if agent.state not in ("paused", "logged_out"):
            raise Refused(ILLEGAL_STATE, f"cannot get ready while {agent.state}")
        self._set_state(agent, "ready")
        self._log("ready", agent_id)
        self._dispatch()
        self._changed()

    async def pause(self, agent_id: int, reason: str) -> None:
        agent = self._agent(agent_id)
        if reason not in dict(PAUSE_REASONS):
            raise Refused(INVALID, f"reason: unknown pause reason {reason!r}")
        if agent.state in ("logged_out", "offered"):
            raise Refused(ILLEGAL_STATE, f"cannot pause while {agent.state}")
        if agent.state in ("busy", "wrap_up"):
            agent.pending_pause = reason  # after the call / wrap-up: never strands a call
        else:
            self._set_state(agent, "paused", reason=reason)
        self._log("pause", agent_id, reason)
        self._changed([agent_id])

    async def cancel_pause(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.pending_pause is None:
            raise Refused(ILLEGAL_STATE, "cannot cancel_pause_request now: no_pause_requested")
        agent.pending_pause = None
        self._log("cancel_pause", agent_id)
        self._changed([agent_id])

    async def accept(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self.calls.get(call_id)
        if call is None or call.agent_id != agent_id or call.state != "offered":
            raise Refused(NOT_FOUND, f"call {call_id} is not offered to you")
        if agent.state != "offered" or agent.offer_call != call_id:
            raise Refused(ILLEGAL_STATE, "no offer")
        agent.offer_call = None
        agent.call = call_id
        self._set_state(agent, "busy")
        call.state = "connecting"
        if self.auto_answer:
            call.state = "connected"
            call.answered_at = self.clock()
        self._log("accept", agent_id, call_id)
        self._changed()

    async def decline(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self.calls.get(call_id)
        if call is None or call.agent_id != agent_id or call.state != "offered":
            raise Refused(NOT_FOUND, f"call {call_id} is not offered to you")
        agent.offer_call = None
        self._set_state(agent, "ready", keep_idle=True)
        call.state, call.agent_id = "waiting", None
        call.declined_by.add(agent_id)
        self._log("decline", agent_id, call_id)
        self._dispatch()
        self._changed()

    async def hangup(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._card(agent, call_id)
        if call.state not in ("connecting", "connected"):  # over: not yours to end
            raise Refused(NOT_FOUND, f"call {call_id} is not yours")
        if call.state == "connecting":  # the phone rings: the app ends it if unanswered
            raise Refused(ILLEGAL_STATE, "the call is not connected yet")
        self._end_call(call)
        self._log("hangup", agent_id, call_id)
        self._changed([agent_id])

    async def finish_wrap_up(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.state != "wrap_up":
            raise Refused(ILLEGAL_STATE, "not in wrap-up")
        card = self.calls.get(agent.call) if agent.call else None
        if card is not None and self._needs_registration(card):
            raise Refused(REGISTRATION_REQUIRED, "register the enquiry first")
        self._after_wrap_up(agent)
        self._log("finish_wrap_up", agent_id)
        self._dispatch()
        self._changed()

    async def extend_wrap_up(self, agent_id: int, seconds: int) -> None:
        agent = self._agent(agent_id)
        if not 0 < seconds <= 3600:  # checked first (as the distributor)
            raise Refused(INVALID, "seconds: a whole number from 1 to 3600")
        if agent.state != "wrap_up" or agent.wrap_up_until is None:
            raise Refused(ILLEGAL_STATE, "not in wrap-up")
        agent.wrap_up_until += dt.timedelta(seconds=seconds)
        self._log("extend_wrap_up", agent_id, seconds)
        self._changed([agent_id])

    async def register_enquiry(
        self, agent_id: int, call_id: int, topic_ids: list[int], comment: str
    ) -> None:
        agent = self._agent(agent_id)
        call = self._card(agent, call_id)
        cats = self._categories_for(call)
        owner = {t.topic_id: c for c in cats for t in c.topics}
        unknown = [t for t in topic_ids if t not in owner]
        if unknown:
            raise Refused(INVALID, f"topic_ids: unknown topics {unknown}")
        if not topic_ids:
            raise Refused(INVALID, "topic_ids: choose at least one topic")
        for cat in cats:
            if not cat.multi and sum(owner[t] is cat for t in topic_ids) > 1:
                raise Refused(INVALID, f"topic_ids: {cat.name} takes one topic")
        call.topic_ids = list(topic_ids)
        call.comment = comment
        call.registered = True
        self._log("register_enquiry", agent_id, call_id, tuple(topic_ids), comment)
        self._changed([agent_id])

    async def close_call(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._card(agent, call_id)
        if call.state != "ended":
            raise Refused(ILLEGAL_STATE, "hang up first")
        if self._needs_registration(call):
            raise Refused(REGISTRATION_REQUIRED, "register the enquiry first")
        call.state = "closed"
        agent.call = None
        self._log("close_call", agent_id, call_id)
        self._changed([agent_id])

    async def search_contacts(self, agent_id: int, query: str) -> list[ContactView]:
        self._agent(agent_id)
        q = query.strip().lower()
        if not q:
            return []
        return [
            c
            for c in self.contacts.values()
            if q in (c.name or "").lower() or q in c.phone or q in (c.company or "").lower()
        ][:20]

    async def attach_contact(self, agent_id: int, call_id: int, contact_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._card(agent, call_id)
        if contact_id not in self.contacts:
            raise Refused(NOT_FOUND, f"no contact {contact_id}")
        call.contact_id = contact_id
        self._log("attach_contact", agent_id, call_id, contact_id)
        self._changed([agent_id])

    async def create_contact(
        self, agent_id: int, call_id: int, name: str, phone: str, company: str, email: str
    ) -> ContactView:
        agent = self._agent(agent_id)
        call = self._card(agent, call_id)
        contact = self.add_contact(
            phone or call.caller, name or None, company=company or None, email=email or None
        )
        call.contact_id = contact.contact_id
        self._log("create_contact", agent_id, call_id, contact.contact_id)
        self._changed([agent_id])
        return contact

    async def callback_missed(self, agent_id: int, missed_id: int) -> None:
        agent = self._agent(agent_id)
        m = self._visible_missed(agent, missed_id)
        if agent.state not in ("ready", "paused") or agent.call is not None:
            raise Refused(ILLEGAL_STATE, "finish your call first")
        call = FakeCall(
            call_id=next(self._ids),
            line_id=m.line_id,
            caller=m.caller,
            kind="service",
            queued_at=self.clock(),
            state="connected",
            agent_id=agent_id,
            answered_at=self.clock(),
            outbound=True,
        )
        self.calls[call.call_id] = call
        agent.call = call.call_id
        self._set_state(agent, "busy")
        m.called_back = True
        self._log("callback_missed", agent_id, missed_id)
        self._changed()

    async def mark_missed_processed(self, agent_id: int, missed_id: int) -> None:
        agent = self._agent(agent_id)
        m = self._visible_missed(agent, missed_id)
        m.processed = True
        self._log("mark_missed_processed", agent_id, missed_id)
        self._changed()

    # --- answering service (F-S2, F-S9) ------------------------------------------------------

    def _client_call(self, agent: FakeAgent, call_id: int, *, live: bool) -> FakeCall:
        call = self._card(agent, call_id)
        if self.lines[call.line_id].client_id is None:
            raise Refused(INVALID, "only answering-service calls are forwarded or noted")
        if live and call.state != "connected":
            raise Refused(ILLEGAL_STATE, "the call is not connected")
        return call

    async def forward(self, agent_id: int, call_id: int, employee_id: int | None) -> None:
        agent = self._agent(agent_id)
        call = self._client_call(agent, call_id, live=True)
        line = self.lines[call.line_id]
        if line.hours in ("closed", "holiday"):
            raise Refused(ILLEGAL_STATE, "the client is closed: tell the hours, take a note")
        if call.forward is not None and call.forward.status in ("ringing", "announcing"):
            raise Refused(ILLEGAL_STATE, "a forward is already going on")
        key = (line.client_id, employee_id)
        if key not in self.forward_targets:
            raise Refused(NOT_FOUND, f"employee_id: no employee {employee_id}")
        targets = self.forward_targets[key]
        if not targets:
            raise Refused(INVALID, "employee_id: this choice gets a note, not a call")
        call.forward = FakeForward(list(targets))
        self._log("forward", agent_id, call_id, employee_id)
        self._changed([agent_id])

    async def forward_connect(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._client_call(agent, call_id, live=True)
        if call.forward is None or call.forward.status != "announcing":
            raise Refused(ILLEGAL_STATE, "nobody is on the line to hand the caller to")
        call.forward.status = "connected"
        call.state = "closed"  # handed over: the agent's card closes, no wrap-up
        agent.call = None
        self._set_state(agent, "ready")
        self._log("forward_connect", agent_id, call_id)
        self._dispatch()
        self._changed()

    async def forward_cancel(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._client_call(agent, call_id, live=True)
        if call.forward is None or call.forward.status not in ("ringing", "announcing"):
            raise Refused(ILLEGAL_STATE, "no forward is going on")
        call.forward.status = "failed"
        self._log("forward_cancel", agent_id, call_id)
        self._changed([agent_id])

    async def take_note(
        self,
        agent_id: int,
        call_id: int,
        message: str,
        caller_name: str,
        callback_number: str,
        employee_id: int | None,
    ) -> None:
        agent = self._agent(agent_id)
        call = self._client_call(agent, call_id, live=False)
        client_id = self.lines[call.line_id].client_id
        assert client_id is not None
        if not message.strip():
            raise Refused(INVALID, "message: the note's message is empty")
        if callback_number and callback_number in self.own_numbers.get(client_id, ()):
            raise Refused(INVALID, f"callback number {callback_number} is the client's own")
        self.notes.append(
            FakeNote(
                agent_id, call_id, client_id, message, caller_name, callback_number, employee_id
            )
        )
        call.notes += 1
        call.registered = True
        self._log("take_note", agent_id, call_id)
        self._changed([agent_id])


def demo_desk(hub: EventHub, agents: Iterable[tuple[int, str, str]]) -> FakeDesk:
    """A fake desk with three lines, categories (one forced-registration line), a few
    contacts, and ``agents`` (id, username, name) permitted on lines 1 and 2 (and 3 for
    the first one)."""
    desk = FakeDesk(hub)
    desk.add_line(1, "+4721000001", "Kundeservice", priority=5)
    desk.add_line(2, "+4721000002", "Salg", priority=3, kind="new_customer", campaign="Vinter")
    desk.add_line(3, "+4721000003", "Support", priority=1, forced_registration=True)
    desk.add_category("Customer's mood", ["Positive", "Negative", "Neutral"])
    desk.add_category("Product", ["General", "SMS survey", "Admin application", "App"], multi=True)
    desk.add_category(
        "Support",
        ["Add users", "Change profiles", "Login problems", "Request for information"],
        multi=True,
    )
    desk.add_contact("+4791234567", "Kari Nordmann", company="Fjord AS", email="kari@fjord.no")
    desk.add_contact("+4791234567", "Ola Nordmann", company="Fjord AS")
    desk.add_contact("+4798765432", "Per Hansen", company="Berg & Sønn")
    for index, (agent_id, username, name) in enumerate(agents):
        desk.add_agent(agent_id, username, name, lines=[1, 2, 3] if index == 0 else [1, 2])
    return desk
