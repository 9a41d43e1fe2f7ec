"""Missed calls on the desk (F-I7): call a missed caller back (the agent's phone first, then
the customer, bridged by the ``Telephony`` port) or mark it processed. A callback is a call
like any other once connected (``LiveCall.mode`` = ``CALLBACK_MODE``): card, hang-up,
enquiry, wrap-up. A mixin of ``Distributor``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import records as rec
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    CALLBACK_MODE,
    LiveAgent,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class MissedCallbacks(DistributorCore):
    def _my_missed(self, s: Session, agent: LiveAgent, missed_id: int) -> m.MissedCall:
        missed = s.get(m.MissedCall, missed_id)
        if (
            missed is None
            or missed.line_id not in agent.permitted
            or missed.processed_at is not None
        ):
            raise c.Refused(c.NOT_FOUND, f"missed call {missed_id} is not on your lines")
        return missed

    async def callback_missed(self, agent_id: int, missed_id: int) -> None:
        """F-I7: call a missed caller back, the agent's phone first. The callback is a call
        like any other: a card on the desk (hang up, enquiry, contact), ``connected`` with
        ``answered_at`` once both legs are bridged, wrap-up when it ends."""
        agent = self._agent(agent_id)
        with self._tx() as s:
            missed = self._my_missed(s, agent, missed_id)
            number, line_id = missed.caller_number, missed.line_id
        if not agent.endpoint or self.telephony is None:
            raise c.Refused(c.ILLEGAL_STATE, "no phone to call from")
        if agent.status.state not in (
            ag.AgentState.READY,
            ag.AgentState.PAUSED,
            ag.AgentState.WRAP_UP,
        ):
            raise c.Refused(c.ILLEGAL_STATE, "finish the current call first")
        now = self.now()
        did = self.line_info.get(line_id or -1, ("", "", 0))[0]
        with self._tx() as s:
            row = m.Call(
                id=self.ids.next(m.Call),  # never the database's: see db/ids.py
                direction=m.Direction.OUTBOUND,
                kind=m.CallKind.MANUAL,
                state=m.CallState.DIALING,
                line_id=line_id,
                agent_id=agent_id,
                caller_number=number,
                dialed_number=number,
                node=self.node,
                started_at=now,
            )
            s.add(row)
            s.flush()
            s.get_one(m.MissedCall, missed_id).callback_call_id = row.id
            self._apply(agent, ag.CallStarted(call_id=row.id), s)
            call_id = row.id
        call = LiveCall(
            call_id=call_id,
            channel_id="",
            kind=rt.CallType.SERVICE,
            line_id=line_id,
            caller=number,
            did=did,
            queued_at=now,
            phase="connecting",
            agent_id=agent_id,
            mode=CALLBACK_MODE,
        )
        self.calls[call_id] = call
        agent.on_outbound_call = True
        self._set_card(agent, call_id)
        self.notifier.agents(agent_id)
        self._spawn(self._run_callback(agent, call, number, did), f"callback-{call_id}")

    async def _run_callback(self, agent: LiveAgent, call: LiveCall, number: str, did: str) -> None:
        legs = None
        try:
            assert agent.endpoint is not None  # callback_missed checked it
            legs = await self.phone.callback(call.call_id, agent.endpoint, number, did)
        except Exception as exc:
            log.error("callback_failed", call=call.call_id, error=repr(exc))
        if call.phase != "connecting":
            return
        now = self.now()
        if legs is not None:
            call.agent_channel, call.channel_id = legs
            call.phase = "connected"
            call.answered_at = now
            self.by_channel[call.channel_id] = call.call_id
            self._write(
                rec.update_call,
                call.call_id,
                state=m.CallState.CONNECTED,
                answered_at=now,
                channel_id=call.channel_id,
            )
            self._write(
                rec.insert_agent_leg,
                call.call_id,
                call.agent_channel,
                agent.endpoint or "",
                agent.agent_id,
                now,
            )
            self._write(rec.insert_contact_leg, call.call_id, call.channel_id, number, now)
            log.info("callback_connected", call=call.call_id, agent=agent.username)
            if call.lost_leg:  # one side hung up while they were being bridged
                self.agent_leg_left(call.call_id)
            else:
                self.notifier.agents(agent.agent_id)
            return
        # Nobody to talk to (the agent or the customer did not answer, or hung up first).
        self._release(call)
        call.phase = "ended"
        self._write(
            rec.update_call,
            call.call_id,
            state=m.CallState.FAILED,
            ended_at=now,
            end_reason="callback_not_connected",
        )
        agent.on_outbound_call = False
        self._set_card(agent, None)
        self.calls.pop(call.call_id, None)
        self._once_released(call, agent, dt.timedelta(0))  # once its phone's leg is gone
        self._after_agent_change(agent)

    async def mark_missed_processed(self, agent_id: int, missed_id: int) -> None:
        agent = self._agent(agent_id)
        with self._tx() as s:
            missed = self._my_missed(s, agent, missed_id)
            missed.processed_at = self.now()
            missed.processed_by = agent_id
        self.missed.pop(missed_id, None)
        self.notifier.everyone()  # every agent of that line sees the list change
