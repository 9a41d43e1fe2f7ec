"""The live call distributor: waiting calls, offers and agents (F-I2..F-I7, F-D5).

This module is the engine: a caller's arrival (``call_arrived``: route, classify, queue),
dispatch (``core.routing.assignments`` says which call to offer to whom), offers and
their timeouts, connecting an agent (``_connect``), and agent transitions
(``core.agents.transition``), over one owner of the live records (``acd.state.AcdState``).
``Distributor`` is composed of small mixins, one concern each, that share that state:
how a call ends (``acd.lifecycle``), the desk's commands (``acd.desk``), forwarding and
notes (``acd.forwarding``), missed-call callbacks (``acd.missed_callbacks``), the
dialer's hooks (``acd.outbound_hooks``), loading and configuration reload
(``acd.loading``), restart recovery (``acd.recovery``). Views are pure (``acd.views``),
contact search runs off the loop (``acd.contacts``), hub messages go through
``acd.notifier``.

Every call, offer and agent transition is queued for writing when it happens
(``acd.records`` on the write-behind ``db.journal``: written in order, a few
milliseconds later, off the event loop), so a restart of ``serve`` can rebuild
the view (``recover``) from the database and the channels Asterisk still holds.
Nothing between a caller's arrival and the originate to the agent waits for the
database except one indexed read (is the caller an open outbound contact?); ids
of new rows come from ``db.ids``. Telephony (holding bridges, ringing the agent,
bridging) is behind the small ``Telephony`` port (``acd.ports``) that the ARI adapter
implements, so this package is tested without Asterisk.

Everything runs on the asyncio loop; no method awaits in the middle of a
state change, so state is never seen half-updated. Slow work (ringing an
agent) runs in tasks that report back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd import contacts
from asterisk_cube.acd import contract as c
from asterisk_cube.acd import records as rec
from asterisk_cube.acd.caller_lookup import CallerLookup
from asterisk_cube.acd.config import AgentConfig, ConfigSnapshot, LineRoute, read_config
from asterisk_cube.acd.crossnode import CrossNode
from asterisk_cube.acd.desk import DeskCommands
from asterisk_cube.acd.forwarding import Forwarding
from asterisk_cube.acd.lifecycle import Lifecycle
from asterisk_cube.acd.loading import Loading
from asterisk_cube.acd.missed_callbacks import MissedCallbacks
from asterisk_cube.acd.notifier import Notifier
from asterisk_cube.acd.outbound_hooks import OutboundHooks
from asterisk_cube.acd.ports import Telephony
from asterisk_cube.acd.records import Write
from asterisk_cube.acd.recovery import Recovery
from asterisk_cube.acd.state import (
    CALLBACK_MODE,
    KIND_TO_DB,
    AcdState,
    Clock,
    DialerAgent,
    EnquiryRegistered,
    LiveAgent,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.core.numbers import (
    DEFAULT_REGION,
    normalize,
)
from asterisk_cube.db import models as m
from asterisk_cube.db.ids import IdAllocator
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import engine_of, transaction
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

# agent transitions a call causes: logged at DEBUG (several per call on the hot path)
_CALL_DRIVEN = (ag.Offer, ag.Accept, ag.CallStarted, ag.CallEnded, ag.WrapUpExpired)

__all__ = [
    "CALLBACK_MODE",
    "AgentConfig",
    "Clock",
    "ConfigSnapshot",
    "DialerAgent",
    "Distributor",
    "EnquiryRegistered",
    "LineRoute",
    "Telephony",
    "read_config",
]


class Distributor(
    Lifecycle,
    DeskCommands,
    MissedCallbacks,
    Loading,
    Recovery,
    OutboundHooks,
    Forwarding,
    CrossNode,
):
    """Implements ``contract.AgentDesk`` and takes call events from the ARI adapter."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        hub: EventHub,
        telephony: Telephony | None = None,
        clock: Clock | None = None,
        node: str = "local",
        ring_timeout: float = 30.0,
        journal: Journal | None = None,
        ids: IdAllocator | None = None,
    ) -> None:
        self.sessions = sessions
        self.journal = journal or Journal(sessions, name="acd")
        self.ids = ids or IdAllocator(engine_of(sessions))
        self.caller_lookup = CallerLookup(engine_of(sessions))
        self.hub = hub
        self.telephony = telephony
        self.clock = clock or Clock()
        self.node = node
        self.ring_timeout = ring_timeout
        self.state = AcdState()  # every live record; the query methods are there
        self.notifier = Notifier(hub, self.state, self.now)
        self.contacts = contacts.Contacts(sessions, self.journal)
        self._tx_depth = 0
        self._tasks: set[asyncio.Task] = set()
        self._loaded = False
        self.on_note: Callable[[], None] | None = None  # e.g. wake the note mailer
        # Counters for /metrics (asterisk_cube/metrics.py reads them at scrape time): one
        # dict increment per offer, offer end, answer and missed call; keys are
        # (what, line_id, agent_id or, for "answered", within the service level).
        self.counts: collections.Counter[tuple[str, int | None, Any]] = collections.Counter()
        self.service_level = dt.timedelta(seconds=20)
        self._enquiry_listeners: list[Callable[[EnquiryRegistered], None]] = []

    # ------------------------------------------------------------- plumbing

    def now(self) -> dt.datetime:
        return self.clock.now()

    @contextlib.contextmanager
    def _tx(self):
        """A synchronous transaction on the loop, for the less frequent work (desk
        actions that read or insert, recovery). The journal is written first, so the
        transaction sees (and is ordered after) every change queued before it."""
        if self._tx_depth == 0:
            self.journal.flush()
        self._tx_depth += 1
        try:
            with transaction(self.sessions) as s:
                yield s
        finally:
            self._tx_depth -= 1

    def _read(self):
        """A read of what the journal never writes (configuration: lines, campaigns,
        pause reasons, clients, contacts by number): no flush needed."""
        return transaction(self.sessions)

    def _write(self, op, *args, then=None, **kwargs) -> None:
        """Queue a write (``acd.records``) with the values of this moment."""
        self.journal.write(Write(op, args, kwargs), then)

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("acd_task_failed", task=task.get_name(), error=repr(task.exception()))

    async def close(self) -> None:
        self.caller_lookup.close()
        for call in self.calls.values():
            if call.offer_timer:
                call.offer_timer.cancel()
        for agent in self.agents.values():
            if agent.wrap_timer:
                agent.wrap_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.get_running_loop().run_in_executor(None, self.journal.close)

    # ------------------------------------------------------ agent transitions

    def _apply(self, agent: LiveAgent, event: ag.Event, s: Session | None = None) -> None:
        """Run the state machine; persist the new status and the log record."""
        now = self.now()
        try:
            result = ag.transition(agent.status, event, now)
        except ag.IllegalTransition as exc:
            raise c.Refused(
                c.ILLEGAL_STATE, f"cannot {ag.event_name(event)} now: {exc.reason}"
            ) from None
        agent.status = result.status
        values = (agent.agent_id, agent.status, agent.card_call_id, result.record, now, self.node)
        if s is None:
            self._write(rec.persist_agent, *values)
        else:
            rec.persist_agent(s, *values)
        self._arm_wrap_timer(agent)
        # what a call does to an agent is DEBUG (per call, hot path; the state log has it);
        # what the agent or a supervisor does (login, pause, ready...) stays INFO
        log.log(
            logging.DEBUG if isinstance(event, _CALL_DRIVEN) else logging.INFO,
            "agent_state",
            agent=agent.username,
            event=ag.event_name(event),
            state=agent.status.state.value,
            reason=result.record.reason,
        )

    def _arm_wrap_timer(self, agent: LiveAgent) -> None:
        if agent.wrap_timer:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
        st = agent.status
        if st.state != ag.AgentState.WRAP_UP or st.wrap_up_until is None:
            return
        delay = max(0.0, (st.wrap_up_until - self.now()).total_seconds())
        loop = asyncio.get_running_loop()
        agent.wrap_timer = loop.call_later(delay, self._wrap_up_expired, agent.agent_id)

    def _wrap_up_expired(self, agent_id: int) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.status.state != ag.AgentState.WRAP_UP:
            return
        if self._registration_missing(agent):
            # Forced registration (F-E2): the agent stays in wrap-up until it registers.
            return
        with contextlib.suppress(c.Refused):
            self._apply(agent, ag.WrapUpExpired())
            self._after_agent_change(agent)

    def _set_card(self, agent: LiveAgent, call_id: int | None) -> None:
        """Show ``call_id`` on the agent's desktop (None: no card). The call whose card is
        replaced is forgotten if it is over: memory holds in-flight calls only."""
        old = agent.card_call_id
        agent.card_call_id = call_id
        if old is not None and old != call_id:
            call = self.calls.get(old)
            if call is not None and call.phase in ("ended", "missed"):
                self.calls.pop(old, None)

    def _registration_missing(self, agent: LiveAgent) -> bool:
        call = self.calls.get(agent.card_call_id) if agent.card_call_id else None
        return bool(call and call.forced_registration and not call.registered)

    def _after_agent_change(self, agent: LiveAgent) -> None:
        self.notifier.agents(agent.agent_id)
        self.dispatch()

    # ----------------------------------------------------------- dispatching

    def dispatch(self) -> None:
        """Offer every call that can be offered now (core.routing decides)."""
        if not any(a.status.state is ag.AgentState.READY for a in self.agents.values()):
            # nobody to offer to (core.routing offers only to ready agents): with every
            # agent busy, each event of a call built every agent's and call's routing view
            # here for nothing (issue #19)
            return
        waiting = self.state.waiting() + self._xn_waiting()  # + other nodes' (crossnode)
        if all(w.offered_to is not None for w in waiting):
            return  # nothing new to offer (core.routing skips offered calls anyway)
        views = [a.routing_view() for a in self.agents.values()]
        now = self.now()
        lost = False
        for choice in rt.assignments(waiting, views, now, self.line_priorities):
            agent = self.agents[choice.agent_id]
            call = self._xn_claim(int(choice.call_id), agent)  # the claim, if another node
            if call is None:  # is live; lost: someone else has it, route the agent again
                lost = True
                continue
            self._offer(call, agent, now, choice.reason.value)
        if lost:
            asyncio.get_running_loop().call_soon(self.dispatch)

    def _offer(self, call: LiveCall, agent: LiveAgent, now: dt.datetime, why: str) -> None:
        timeout = self.line_info.get(call.line_id or -1, ("", "", 20))[2]
        self._apply(agent, ag.Offer(call_id=call.call_id))
        call.offer_id = self.ids.next(m.CallOffer)
        self._write(rec.insert_offer, call.offer_id, call.call_id, agent.agent_id, now)
        call.phase = "offered"
        call.agent_id = agent.agent_id
        call.offered_at = now
        self.counts[("offered", call.line_id, agent.agent_id)] += 1
        call.offer_expires = now + dt.timedelta(seconds=timeout)
        loop = asyncio.get_running_loop()
        call.offer_timer = loop.call_later(
            timeout, self._offer_timed_out, call.call_id, agent.agent_id
        )
        log.debug("offer", call=call.call_id, agent=agent.username, reason=why, timeout=timeout)
        self.notifier.agents(agent.agent_id)

    def _end_offer(self, call: LiveCall, result: m.OfferResult) -> None:
        if call.offer_timer:
            call.offer_timer.cancel()
            call.offer_timer = None
        if call.offer_id is not None:
            self._write(rec.end_offer, call.offer_id, result, self.now())
            self.counts[(result.value, call.line_id, call.agent_id)] += 1
        call.offer_id = None

    def _offer_timed_out(self, call_id: int, agent_id: int) -> None:
        call = self.calls.get(call_id)
        agent = self.agents.get(agent_id)
        if call is None or agent is None or call.phase != "offered" or call.agent_id != agent_id:
            return
        now = self.now()
        self._end_offer(call, m.OfferResult.TIMEOUT)
        self._back_to_queue(call, lapsed_by=agent_id, now=now)
        # The unresponsive agent goes to a pause (F-I4).
        self._apply(agent, ag.OfferTimeout())
        log.info("offer_timeout", call=call_id, agent=agent.username)
        self.notifier.everyone()
        self.dispatch()

    def _back_to_queue(
        self,
        call: LiveCall,
        lapsed_by: int | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        if self._xn_back_to_queue(call, lapsed_by, now or self.now()):
            return  # another node's call: given back
        if lapsed_by is not None:
            call.declined = (*call.declined, (lapsed_by, now or self.now()))
        call.phase = "waiting"
        call.agent_id = None
        call.offer_expires = None
        self._write(rec.update_call, call.call_id, state=m.CallState.WAITING, agent_id=None)
        self._xn_requeued(call)

    # ------------------------------------------------------ events from ARI

    def _line_route(self, line_id: int | None) -> LineRoute | None:
        if line_id is None:
            return None
        route = self.line_routes.get(line_id)
        if route is None:  # a line added since we loaded
            with self._tx() as s:
                line = s.get(m.Line, line_id)
                route = self._remember_line(line) if line is not None else None
        return route

    def _callback_route(self, campaign_id: int | None) -> LineRoute | None:
        """The route of a call to an outbound campaign's caller ID (read once, then kept)."""
        if campaign_id is None:
            return None
        route = self.callback_routes.get(campaign_id)
        if route is None:
            with self._tx() as s:
                campaign = s.get(m.Campaign, campaign_id)
                if campaign is None:
                    return None
                route = self.callback_routes[campaign_id] = LineRoute(
                    line_id=None,
                    did=campaign.caller_id or "",
                    priority=0,
                    client_id=None,
                    campaign_id=campaign.id,
                    region=campaign.phone_region,
                    skill=campaign.skill.name if campaign.skill else None,
                    forced_registration=campaign.forced_registration,
                    wrap_up_seconds=campaign.wrap_up_seconds,
                )
        return route

    def classify(
        self, caller: str, line: LineRoute | None
    ) -> tuple[rt.CallType, str | None, tuple | None]:
        """F-I3: customer callback > new customer (hotline) > service call.

        Returns the call type, the caller's number in E.164 (None if it is not a
        number) and, for a customer callback, the open contact found
        ``(contact id, campaign id, last agent, skill, forced registration, wrap-up)``.
        One indexed read; a hotline's new contact is created by the journal. A call to an
        outbound campaign's caller ID (``line.line_id`` None) is a customer callback of
        that campaign even when the caller is no open contact (withheld, or not in the list)."""
        number = normalize(caller, (line.region if line else None) or DEFAULT_REGION)
        if number:
            found = self.caller_lookup(number)  # a read: no need to flush the journal
            if found is not None:
                return rt.CallType.CUSTOMER_CALLBACK, number, tuple(found)
        if line is not None and line.line_id is None:
            return rt.CallType.CUSTOMER_CALLBACK, number, None
        if line is not None and line.client_id is not None:
            return rt.CallType.ANSWERING, number, None
        if line is not None and line.campaign_id is not None:
            return rt.CallType.NEW_CUSTOMER, number, None
        return rt.CallType.SERVICE, number, None

    def call_arrived(
        self,
        channel_id: str,
        line_id: int | None,
        caller: str,
        dialed: str = "",
        hours: str = "",
        queued_at: dt.datetime | None = None,
        campaign_id: int | None = None,
    ) -> int:
        """A caller entered the Stasis app on a line (or, ``campaign_id``, on an outbound
        campaign's caller ID): record it, queue it, offer it.
        ``queued_at``: when it entered, if earlier than now (adopted after a restart)."""
        if channel_id in self.by_channel:
            return self.by_channel[channel_id]
        now = queued_at or self.now()
        line = self._line_route(line_id) or self._callback_route(campaign_id)
        kind, number, found = self.classify(caller, line)
        call = LiveCall(
            call_id=self.ids.next(m.Call),
            channel_id=channel_id,
            kind=kind,
            line_id=line.line_id if line else None,
            caller=caller or "",
            did=dialed or (line.did if line else ""),
            queued_at=now,
            client_id=line.client_id if line else None,
            hours=hours,
        )
        if found is not None:  # a customer calling back an open outbound contact
            contact_id, campaign_id, last_agent, skill, forced, wrap = found
            call.contact_id, call.campaign_id, call.last_agent_id = (
                contact_id,
                campaign_id,
                last_agent,
            )
            call.skill, call.forced_registration, call.wrap_up_seconds = skill, bool(forced), wrap
        elif line is not None and kind in (rt.CallType.NEW_CUSTOMER, rt.CallType.CUSTOMER_CALLBACK):
            call.campaign_id, call.skill = line.campaign_id, line.skill
            call.forced_registration = line.forced_registration
            call.wrap_up_seconds = line.wrap_up_seconds
        self._write(
            rec.insert_arrival,
            dict(
                id=call.call_id,
                direction=m.Direction.INBOUND,
                kind=KIND_TO_DB[kind],
                state=m.CallState.WAITING,
                line_id=call.line_id,
                campaign_id=call.campaign_id,
                client_id=call.client_id,
                contact_id=call.contact_id,
                caller_number=call.caller,
                dialed_number=call.did,
                channel_id=channel_id,
                node=self.node,
                line_priority=line.priority if line else 0,
                started_at=now,
                queued_at=now,
            ),
            channel_id,
            now,
        )
        if kind == rt.CallType.NEW_CUSTOMER and number:
            self._write(
                rec.create_contact,
                call.call_id,
                call.campaign_id,
                number,
                then=partial(self._contact_created, call.call_id),
            )
        self.calls[call.call_id] = call
        self.by_channel[channel_id] = call.call_id
        log.debug("call_waiting", call=call.call_id, kind=kind.value, line=line_id, caller=caller)
        self.notifier.queue(call.line_id)  # the line's desks: a new count, not a view
        self.dispatch()
        self._xn_announce_waiting(call)  # no agent took it at once: the other nodes' too
        return call.call_id

    def _contact_created(self, call_id: int, contact_id: int) -> None:
        """The hotline's new contact is written: show it on the call card."""
        call = self.calls.get(call_id)
        if call is not None and call.contact_id is None:
            call.contact_id = contact_id
            call.card_static = None
            if call.agent_id is not None:
                self.notifier.agents(call.agent_id)

    # ----------------------------------------------------------- connecting

    async def _connect(self, call: LiveCall, agent: LiveAgent) -> None:
        agent_channel = None
        agents_fault = True  # None from connect_agent: the phone was not answered
        if call.remote_node is not None:  # another node's call: that node rings and bridges
            agent_channel = await self._xn_connect(call, agent)
        elif self.telephony is not None and agent.endpoint:
            try:
                agent_channel = await self.telephony.connect_agent(
                    call.call_id,
                    call.channel_id,
                    agent.endpoint,
                    tone=call.kind == rt.CallType.CUSTOMER_CALLBACK,
                )
            except Exception as exc:
                # Bridging failed, most often because the caller has just gone (its
                # StasisEnd follows): not the agent's doing, so no pause for it.
                agents_fault = False
                log.warning(
                    "connect_failed", call=call.call_id, agent=agent.username, error=repr(exc)
                )
        if call.phase != "connecting" or call.agent_id != agent.agent_id:
            if agent_channel and self.telephony is not None and call.remote_node is None:
                await self.telephony.hangup(agent_channel)  # the caller hung up meanwhile
            return
        now = self.now()
        if agent_channel:
            call.phase = "connected"
            call.agent_channel = agent_channel
            call.answered_at = now
            within = now - call.queued_at <= self.service_level
            self.counts[("answered", call.line_id, within)] += 1
            if call.remote_node is None:  # else its node writes the row and the leg
                self._write(
                    rec.update_call,
                    call.call_id,
                    state=m.CallState.CONNECTED,
                    answered_at=now,
                    agent_id=agent.agent_id,
                )
                self._write(
                    rec.insert_agent_leg,
                    call.call_id,
                    agent_channel,
                    agent.endpoint or "",
                    agent.agent_id,
                    now,
                )
                self._xn_connected(call)
            log.debug("call_connected", call=call.call_id, agent=agent.username)
            # only this agent's desk changed: the call left the others' queue counts at
            # the accept (issue #19: every logged-in desk re-rendered here)
            self.notifier.agents(agent.agent_id)
            self.dispatch()
            return
        if agents_fault:
            # The agent did not pick up its phone: the caller keeps its place.
            self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
            self._apply(agent, ag.Pause(reason=ag.PauseReason.NO_ANSWER))
            self._set_card(agent, None)
            self._back_to_queue(call, lapsed_by=agent.agent_id, now=now)
            log.info("agent_no_answer", call=call.call_id, agent=agent.username)
        else:
            # Telephony failed: the agent is free again, the caller keeps its place
            # (or becomes a missed call when its hang-up arrives).
            self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
            self._set_card(agent, None)
            self._back_to_queue(call, now=now)
        self.notifier.everyone()
        self.dispatch()

    def call_of_agent_channel(self, channel_id: str) -> int | None:
        return self.state.call_of_agent_channel(channel_id)

    def waiting_channels(self) -> list[str]:
        """Channels of calls waiting or offered, in queue order (for the adapter)."""
        return self.state.waiting_channels()
