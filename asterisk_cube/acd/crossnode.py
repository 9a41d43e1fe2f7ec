"""One queue across nodes (issue #14): the distributor's side of the global queue. A mixin
of ``Distributor``; PostgreSQL only (``xn_attach`` does nothing on SQLite: one node, the
queue exactly as before).

- A call that waits (no own agent takes it at once) is **announced**: a ``waiting``
  NOTIFY in the journal batch that writes its row (``call_arrived``), so the other nodes
  learn of it once it is committed. Its offer (the claim), connect and end are announced
  the same way.
- Every node keeps a ``WaitingMirror`` of the other live nodes' waiting calls, fed by the
  notifications that ``ConfigWatcher``'s LISTEN connection receives (``payload_channels``)
  and read once at start (``xn_run``): no polling, no read on the call path.
- ``dispatch`` routes own agents over own and mirrored calls in one global order
  (``core.routing.assignments``). An offer of a mirrored call, or of an own call that was
  announced, is confirmed by the conditional claim (``crossnode_claims.claim``); 0 rows:
  someone else took it, the next decision is tried.
- **The call's node does the media** and owns the call's row; **the agent's node owns the
  agent**: its desk accepts, and ``accept`` asks the call's node to ring the agent's phone
  (``PJSIP/<phone>@cube-node-<x>`` goes over the trunk) and bridge its caller as for an own
  agent. The call's node answers ``connected`` or ``noanswer`` (the call waits again in its
  place) and announces ``ended``; the agent's node moves its agent (busy, no-answer pause,
  wrap-up) from those. Its desk's Hang up sends ``hangup``; the call's node ends every leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from asterisk_cube.acd import records as rec
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.crossnode_claims import (
    announce,
    claim_returning,
    give_back,
    requeue,
    return_dead_claims,
    waiting_elsewhere,
)
from asterisk_cube.acd.state import DB_TO_KIND, LiveAgent, LiveCall
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.core import trunk
from asterisk_cube.core.queue_mirror import (
    CHANNEL,
    DOWN,
    UP,
    QueueEvent,
    WaitingMirror,
    decode,
)
from asterisk_cube.db import models as m
from asterisk_cube.db.session import engine_of, transaction
from asterisk_cube.logs import get_logger

if TYPE_CHECKING:
    from asterisk_cube.db.config_version import ConfigWatcher

log = get_logger(__name__)

CONNECT_MARGIN = 15.0  # seconds beyond the ring timeout before a lost answer counts as none


class CrossNode(DistributorCore):
    xn_mirror: WaitingMirror | None = None  # None: no other node can exist (SQLite)
    _xn_loop: asyncio.AbstractEventLoop | None = None
    _xn_pending: dict[int, asyncio.Future[bool]]
    _xn_declined: dict[int, tuple[tuple[int, dt.datetime], ...]]
    _xn_peers: set[str]  # the other live nodes: while there is none, nothing is announced
    _xn_loaded = False  # the mirror was read once (xn_run)

    # ------------------------------------------------------------------ wiring

    def xn_attach(self, watcher: ConfigWatcher) -> bool:
        """Join the global queue through ``watcher``'s LISTEN connection (PostgreSQL)."""
        if engine_of(self.sessions).dialect.name != "postgresql":
            return False
        self.xn_mirror = WaitingMirror(self.node)
        self._xn_pending, self._xn_declined, self._xn_peers = {}, {}, set()
        with self._tx() as s:  # our last run's offers on other nodes' calls wait again
            return_dead_claims(s, self.node)
        watcher.payload_channels[CHANNEL] = self._xn_note_threadsafe
        watcher.on_listen.append(self._xn_relisten_threadsafe)
        return True

    async def xn_run(self, watcher: ConfigWatcher) -> None:
        """A ``serve`` component: once LISTEN is up, read the other nodes' waiting calls
        once (what arrives later comes by NOTIFY), then route with them."""
        self._xn_loop = asyncio.get_running_loop()
        if self.xn_mirror is None:
            await asyncio.Event().wait()
            return
        while not await asyncio.to_thread(watcher.listening.wait, 5.0):
            pass
        await self._xn_load()
        self._xn_send(announce, QueueEvent(UP, 0, self.node))  # the others announce theirs
        self._xn_loaded = True
        self._xn_announce_all()
        self.dispatch()
        await asyncio.Event().wait()

    async def _xn_load(self) -> None:
        assert self.xn_mirror is not None
        peers, events = await asyncio.to_thread(self._xn_read)
        self._xn_peers |= peers
        self.xn_mirror.load(events)
        log.info("queue_mirror_loaded", calls=len(self.xn_mirror), peers=sorted(peers))

    def _xn_relisten_threadsafe(self) -> None:
        """LISTEN is up again after a lost connection: what was notified meanwhile is
        lost; read the mirror again and announce our waiting calls again."""
        loop = self._xn_loop
        if self._xn_loaded and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._spawn, self._xn_reload(), "xn-reload")

    async def _xn_reload(self) -> None:
        await self._xn_load()
        for call in self.calls.values():
            if call.remote_node is None and call.phase == "waiting":
                call.announced = False  # announced again (the others may have missed it)
        self._xn_announce_all()
        self.dispatch()

    def _xn_read(self) -> tuple[set[str], list[QueueEvent]]:
        with transaction(self.sessions) as s:
            now = self.now()
            live = [n.name for n in s.query(m.Node).filter(m.Node.lease_until > now)]
            return set(live) - {self.node}, waiting_elsewhere(s, self.node, live)

    def _xn_note_threadsafe(self, payload: str) -> None:
        loop = self._xn_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.xn_note, payload)

    def _xn_send(self, op: Any, *args: Any) -> None:
        """Queue a write that NOTIFYs another node, and have the journal write it now:
        another node waits for it (its batch delay would add a quarter second a hop)."""
        self._write(op, *args)
        self.journal.hurry()

    # ------------------------------------------------------------ notifications

    def xn_note(self, payload: str) -> None:
        """One notification on the queue channel (on the loop)."""
        event = decode(payload)
        if event is None or self.xn_mirror is None:
            return
        changed = self.xn_mirror.apply(event)
        if event.node != self.node:
            if event.kind == DOWN:
                self._xn_peers.discard(event.node)
            elif event.node not in self._xn_peers or event.kind == UP:
                self._xn_peers.add(event.node)
                self._xn_announce_all()  # a node joined: it must see our waiting calls
        if event.kind == "ended":
            self._xn_declined.pop(event.call_id, None)
        call = self.calls.get(event.call_id)
        if call is not None and call.remote_node is not None:
            self._xn_as_agents_node(call, event)
        elif call is not None:
            self._xn_as_calls_node(call, event)
        if changed:
            self.dispatch()

    def _xn_foreign(self, call: LiveCall) -> bool:
        """Our call, offered to (or claimed for) another node's agent."""
        return call.offer_node is not None and call.offer_node != self.node

    def _xn_as_calls_node(self, call: LiveCall, event: QueueEvent) -> None:
        claimer = event.node
        if event.kind == "offered" and claimer != self.node:
            if call.phase in ("waiting", "offered") and call.offer_node != self.node:
                call.phase, call.agent_id, call.offer_node = "offered", event.agent_id, claimer
                self.notifier.line(call.line_id)
        elif event.kind == "waiting" and claimer == self.node:
            if call.phase == "offered" and self._xn_foreign(call):  # given back
                call.phase, call.agent_id, call.offer_node = "waiting", None, None
                self.notifier.line(call.line_id)
                self.dispatch()
        elif event.kind == "accept" and claimer == call.offer_node and call.phase == "offered":
            call.phase = "connecting"
            call.agent_id = event.agent_id
            self._spawn(
                self._xn_ring(call, event.agent_id, event.endpoint, claimer),
                f"xn-connect-{call.call_id}",
            )
        elif event.kind == "hangup" and claimer == call.offer_node and call.phase == "connected":
            self.agent_leg_left(call.call_id)

    def _xn_as_agents_node(self, call: LiveCall, event: QueueEvent) -> None:
        if event.node != call.remote_node:
            return
        pending = self._xn_pending.get(call.call_id)
        if event.kind in ("connected", "noanswer"):
            if pending is not None and not pending.done():
                pending.set_result(event.kind == "connected")
            return
        if event.kind != "ended":
            return
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        if call.phase == "offered" and agent is not None:
            self._end_offer(call, m.OfferResult.WITHDRAWN)
            self._apply(agent, ag.OfferWithdrawn())
            self._xn_forget(call)
        elif call.phase == "connecting" and agent is not None:
            self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
            self._set_card(agent, None)
            self._xn_forget(call)
            if pending is not None and not pending.done():
                pending.set_result(False)
        elif call.phase == "connected":
            self._call_finished(call)
        else:
            return
        self.notifier.everyone()
        self.dispatch()

    def _xn_forget(self, call: LiveCall) -> None:
        call.phase = "missed"  # a connect still running for it must not act on it
        self.calls.pop(call.call_id, None)

    # ----------------------------------------------------------------- routing

    def _xn_waiting(self) -> list[rt.WaitingCall]:
        """The mirrored calls as routing sees them (with our agents' declines)."""
        if self.xn_mirror is None:
            return []
        return [
            dataclasses.replace(w, declined=self._xn_declined.get(int(w.call_id), ()))
            for w in self.xn_mirror.waiting()
            if int(w.call_id) not in self.calls
        ]

    def _xn_claim(self, call_id: int, agent: LiveAgent) -> LiveCall | None:
        """Confirm a routing decision by the claim; the call to offer, or None (someone
        else has it). Own calls only need it once announced."""
        own = self.calls.get(call_id)
        if own is not None and (not own.announced or self.xn_mirror is None):
            return own
        assert self.xn_mirror is not None
        home = own.remote_node or self.node if own is not None else self.xn_mirror.node_of(call_id)
        mirrored = next((w for w in self.xn_mirror.waiting() if w.call_id == call_id), None)
        offered = QueueEvent("offered", call_id, self.node, agent_id=agent.agent_id)
        with self._tx() as s:
            row = claim_returning(s, call_id, agent.agent_id, self.node)
            if row is not None:
                announce(s, offered)
        if own is not None:
            if row is None:  # another node's agent has it: we learn whom by NOTIFY
                own.phase, own.offer_node = "offered", own.offer_node or ""
                return None
            own.offer_node = self.node
            return own
        self.xn_mirror.drop(call_id)
        if row is None or mirrored is None or home is None:
            return None
        call = LiveCall(
            call_id=call_id,
            channel_id="",
            kind=mirrored.call_type,
            line_id=mirrored.line_id,
            caller=row.caller_number or "",
            did=row.dialed_number or "",
            queued_at=mirrored.queued_at,
            campaign_id=row.campaign_id,
            client_id=row.client_id,
            contact_id=row.contact_id,
            skill=mirrored.skill,  # given back or requeued, it is announced with them
            last_agent_id=mirrored.last_agent_id,
            declined=self._xn_declined.get(call_id, ()),
            remote_node=home,
        )
        if row.kind is not None:
            call.kind = DB_TO_KIND.get(row.kind, call.kind)
        self.calls[call_id] = call
        return call

    def _xn_announce_waiting(self, call: LiveCall) -> None:
        """``call_arrived``: no own agent took the call at once: the others learn of it
        when the journal commits its row."""
        if self.xn_mirror is None or call.phase != "waiting" or not self._xn_peers:
            return  # alone: nobody else can take it (claims only for announced calls)
        call.announced = True
        self._xn_send(announce, self._xn_waiting_event(call))

    def _xn_announce_all(self) -> None:
        """Announce every own call waiting that was not (no other node was live then)."""
        for call in list(self.calls.values()):
            if call.remote_node is None and not call.announced and not call.dialer_owned:
                self._xn_announce_waiting(call)

    def _xn_waiting_event(self, call: LiveCall) -> QueueEvent:
        home = call.remote_node or self.node
        return QueueEvent(
            "waiting",
            call.call_id,
            home,
            call.line_id,
            call.kind,
            call.queued_at,
            skill=call.skill,
            campaign_id=call.campaign_id,
            last_agent_id=call.last_agent_id,
        )

    def _xn_back_to_queue(self, call: LiveCall, lapsed_by: int | None, now: dt.datetime) -> bool:
        """An offer not taken. Another node's call: given back (it waits again in its
        place), forgotten here; True."""
        if call.remote_node is not None:
            if lapsed_by is not None:
                self._xn_declined[call.call_id] = (*call.declined, (lapsed_by, now))
            if call.phase == "offered":
                self._xn_send(give_back, call.call_id, self.node, self._xn_waiting_event(call))
            self._xn_forget(call)
            return True
        return False

    def _xn_requeued(self, call: LiveCall) -> None:
        """Our call waits again (its row written so): the other nodes see it wait."""
        if call.announced:
            call.offer_node = None
            self._xn_send(requeue, call.call_id, self._xn_waiting_event(call))
        else:
            self._xn_announce_waiting(call)

    # ------------------------------------------------------------------- media

    async def _xn_connect(self, call: LiveCall, agent: LiveAgent) -> str | None:
        """The agent's node: ask the call's node to ring our agent's phone and bridge its
        caller; a marker for the agent's leg (held there), or None (not answered)."""
        assert self._xn_loop is not None
        pending: asyncio.Future[bool] = self._xn_loop.create_future()
        self._xn_pending[call.call_id] = pending
        endpoint = trunk.qualified(agent.endpoint or "", self.node)  # as the call's node dials it
        me, agent_id = self.node, agent.agent_id
        self._xn_send(
            announce, QueueEvent("accept", call.call_id, me, agent_id=agent_id, endpoint=endpoint)
        )
        try:
            answered = await asyncio.wait_for(pending, self.ring_timeout + CONNECT_MARGIN)
        except TimeoutError:  # its node did not answer (down?): give the claim back
            answered = False
            self._xn_send(give_back, call.call_id, self.node, self._xn_waiting_event(call))
        finally:
            self._xn_pending.pop(call.call_id, None)
        return f"xn-{call.call_id}" if answered else None

    async def _xn_ring(self, call: LiveCall, agent_id: Any, endpoint: str, claimer: str) -> None:
        """The call's node: ring the other node's agent (over the trunk) and bridge."""
        channel = None
        with contextlib.suppress(Exception):
            channel = await self.phone.connect_agent(
                call.call_id,
                call.channel_id,
                endpoint,
                tone=call.kind == rt.CallType.CUSTOMER_CALLBACK,
            )
        if call.phase != "connecting" or call.offer_node != claimer:
            if channel:
                await self.phone.hangup(channel)  # the caller hung up meanwhile
            return
        now = self.now()
        if channel:
            call.phase, call.agent_channel, call.answered_at = "connected", channel, now
            self.counts[("answered", call.line_id, now - call.queued_at <= self.service_level)] += 1
            self._write(
                rec.update_call,
                call.call_id,
                state=m.CallState.CONNECTED,
                answered_at=now,
                agent_id=agent_id,
            )
            self._write(rec.insert_agent_leg, call.call_id, channel, endpoint, agent_id, now)
            connected = QueueEvent("connected", call.call_id, self.node, agent_id=agent_id)
            self._xn_send(announce, connected)
            log.debug("call_connected", call=call.call_id, agent_node=claimer)
        else:
            call.phase, call.agent_id, call.offer_node = "waiting", None, None
            call.declined = (*call.declined, (agent_id, now))
            noanswer = QueueEvent("noanswer", call.call_id, self.node, agent_id=agent_id)
            self._xn_send(requeue, call.call_id, self._xn_waiting_event(call), noanswer)
            log.info("agent_no_answer", call=call.call_id, agent_node=claimer)
        self.notifier.everyone()
        self.dispatch()

    # ---------------------------------------------------------------- endings

    def _xn_ended(self, call: LiveCall) -> None:
        """Our call ended (or was missed): the mirrors and the agent's node learn of it."""
        if call.remote_node is None and (call.announced or self._xn_foreign(call)):
            ended = QueueEvent("ended", call.call_id, self.node, agent_id=call.agent_id)
            self._xn_send(announce, ended)

    def _xn_connected(self, call: LiveCall) -> None:
        """Our announced call was answered by our own agent."""
        if call.announced:
            self._xn_send(announce, QueueEvent("connected", call.call_id, self.node))

    def _xn_hangup(self, call: LiveCall) -> None:
        """The agent's node: our desk hung up another node's call: that node ends every
        leg; our agent goes to wrap-up now."""
        self._xn_send(
            announce, QueueEvent("hangup", call.call_id, self.node, agent_id=call.agent_id)
        )
        self._call_finished(call)
        self.notifier.everyone()
        self.dispatch()
