"""The dialer's hooks into the distributor (F-I5, F-I8, F-E5/F-E6): which agents pacing may
count on, an outbound call taking an agent (busy, inbound blocked, call card) and giving it
back (wrap-up or pause), and the listeners of registered enquiries.

``DialerPort`` is what the dialer (``asterisk_cube.dialer``) may call: the dialer depends
on that protocol, not on the distributor. ``OutboundHooks`` implements it as a mixin of
``Distributor`` over the same live records, so agent states stay in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from asterisk_cube.acd import records as rec
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    DialerAgent,
    EnquiryRegistered,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.db import models as m
from asterisk_cube.db.ids import IdAllocator
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class DialerPort(Protocol):
    """What the dialer may ask of the distributor (implemented by ``OutboundHooks``)."""

    ids: IdAllocator  # call ids come from the same allocator as the distributor's

    def dialer_agents(self, skill: str | None = None) -> list[rt.AgentView]: ...

    def dialer_pool(self, skill: str | None = None) -> list[DialerAgent]: ...

    def set_dialer_dialing(self, agent_id: int, dialing: bool) -> None: ...

    def outbound_started(
        self,
        *,
        call_id: int,
        agent_id: int,
        campaign_id: int | None,
        contact_id: int | None,
        number: str,
        channel_id: str | None,
        mode: str,
        connected: bool,
        comment: str = "",
    ) -> None: ...

    def outbound_connected(
        self, call_id: int, channel_id: str, agent_channel: str | None = None
    ) -> None: ...

    def outbound_ended(self, call_id: int, agent_no_answer: bool = False) -> None: ...

    def leg_originated(self, call_id: int, channel_id: str) -> bool: ...

    def add_enquiry_listener(self, listener: Callable[[EnquiryRegistered], None]) -> None: ...

    def waiting_for_campaign(self, campaign_id: int) -> int: ...


class OutboundHooks(DistributorCore):
    # ------------------------------------------------------- outbound (dialer)
    #
    # The dialer (``asterisk_cube.dialer``) owns contacts, pacing and its calls;
    # these hooks keep agent states, blocking (F-I5) and the desktop's call card
    # in this one place.

    def dialer_agents(self, skill: str | None = None) -> list[rt.AgentView]:
        """Routing views of logged-in agents holding ``skill`` (all if None), for pacing."""
        return [
            a.routing_view()
            for a in self.agents.values()
            if a.status.state != ag.AgentState.LOGGED_OUT and (skill is None or skill in a.skills)
        ]

    def set_dialer_dialing(self, agent_id: int, dialing: bool) -> None:
        """The dialer is (not) dialing for this agent: inbound is blocked meanwhile (F-I5)."""
        agent = self._agent(agent_id)
        if agent.dialer_dialing != dialing:
            agent.dialer_dialing = dialing
            self.notifier.agents(agent_id)
            if not dialing:
                self.dispatch()

    def outbound_started(
        self,
        *,
        call_id: int,
        agent_id: int,
        campaign_id: int | None,
        contact_id: int | None,
        number: str,
        channel_id: str | None,
        mode: str,
        connected: bool,
        comment: str = "",
    ) -> None:
        """An outbound call now belongs to this agent (busy, inbound blocked, card shown).

        ``connected=False`` while the agent's phone rings first (preview mode);
        call ``outbound_connected`` when both legs are bridged. Raises Refused if
        the agent cannot take a call now."""
        agent = self._agent(agent_id)
        # On the dialer's 2 s path (answered -> agent taken -> bridged): no write and no
        # journal flush on the loop, which waited for SQLite's write lock while another
        # thread committed (the loop watchdog's stack, issue #11 item 11). The journal
        # writes the agent's state and the call's agent in order; the campaign is a read.
        self._apply(agent, ag.CallStarted(call_id=call_id))  # raises Refused: nothing written
        self._write(rec.update_call, call_id, agent_id=agent_id)
        with self._read() as s:
            campaign = s.get(m.Campaign, campaign_id) if campaign_id else None
            forced = bool(campaign and campaign.forced_registration)
            wrap_up = campaign.wrap_up_seconds if campaign else None
        now = self.now()
        call = LiveCall(
            call_id=call_id,
            channel_id=channel_id or "",
            kind=rt.CallType.SERVICE,
            line_id=None,
            caller=number,
            did=number,
            queued_at=now,
            campaign_id=campaign_id,
            contact_id=contact_id,
            comment=comment,
            phase="connected" if connected else "connecting",
            agent_id=agent_id,
            answered_at=now if connected else None,
            mode=mode,
            forced_registration=forced,
            wrap_up_seconds=wrap_up,
        )
        self.calls[call_id] = call
        agent.on_outbound_call = True
        agent.dialer_dialing = False
        self._set_card(agent, call_id)
        self.notifier.agents(agent_id)

    def outbound_connected(
        self, call_id: int, channel_id: str, agent_channel: str | None = None
    ) -> None:
        """Contact and agent are bridged; with the agent's leg known, the desk's Hang up
        ends both legs."""
        call = self.calls.get(call_id)
        if call is None:
            return
        call.phase = "connected"
        call.channel_id = channel_id
        call.agent_channel = agent_channel
        call.answered_at = self.now()
        if call.agent_id is not None:  # outbound_started set it
            self.notifier.agents(call.agent_id)

    def outbound_ended(self, call_id: int, agent_no_answer: bool = False) -> None:
        """The outbound call is over: wrap-up (campaign default) with the card left open
        for registration; or, if the agent never answered (preview), pause it."""
        call = self.calls.get(call_id)
        if call is None or call.phase == "ended":
            return
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        if agent is not None:
            agent.on_outbound_call = False
        # an agent whose ringing phone the desk's Hang up ended did not let it ring
        if agent_no_answer and agent is not None and not call.lost_leg:
            self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
            self._apply(agent, ag.Pause(reason=ag.PauseReason.NO_ANSWER))
            self._set_card(agent, None)
            self.calls.pop(call_id, None)
        elif call.phase == "connecting" and agent is not None:
            # The contact was never reached: nothing to register, no wrap-up.
            self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
            self._set_card(agent, None)
            self.calls.pop(call_id, None)
        else:
            self._call_finished(call)
        self.notifier.everyone()
        self.dispatch()

    def dialer_pool(self, skill: str | None = None) -> list[DialerAgent]:
        """Like ``dialer_agents``, with what pacing and connecting also need: wrap-up end,
        a pause requested after the call, and the agent's phone."""
        return [
            DialerAgent(
                agent_id=a.agent_id,
                state=a.status.state,
                since=a.status.since,
                idle_since=a.status.idle_since,
                wrap_up_until=a.status.wrap_up_until,
                pause_requested=a.status.pause_requested,
                endpoint=a.endpoint,
                on_outbound_call=a.on_outbound_call,
                dialer_dialing=a.dialer_dialing,
            )
            for a in self.agents.values()
            if a.status.state != ag.AgentState.LOGGED_OUT and (skill is None or skill in a.skills)
        ]

    def add_enquiry_listener(self, listener: Callable[[EnquiryRegistered], None]) -> None:
        """``listener`` hears of every registered enquiry (the dialer applies campaign topic
        outcomes, F-E5/F-E6). It runs after the registration is stored; errors are logged."""
        self._enquiry_listeners.append(listener)

    def _enquiry_registered(
        self, call: LiveCall, agent_id: int, topic_ids: list[int], comment: str
    ) -> None:
        event = EnquiryRegistered(
            call_id=call.call_id,
            agent_id=agent_id,
            campaign_id=call.campaign_id,
            contact_id=call.contact_id,
            topic_ids=tuple(dict.fromkeys(topic_ids)),
            comment=comment,
            mode=call.mode,
        )
        for listener in self._enquiry_listeners:
            try:
                listener(event)
            except Exception as exc:
                log.error("enquiry_listener_failed", call=call.call_id, error=repr(exc))

    def waiting_for_campaign(self, campaign_id: int) -> int:
        """Inbound customer callbacks to this campaign waiting (or offered) now: the pacer
        leaves room for them (F-I8)."""
        return self.state.waiting_for_campaign(campaign_id)
