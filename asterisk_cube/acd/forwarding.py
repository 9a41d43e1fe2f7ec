"""Answering-service forwarding (F-S2) and call notes (F-S5): the agent holds the caller, rings
the client's targets one after another, announces the call and hands it over; or takes a
note. A mixin of ``Distributor``: it works on the distributor's live records and asks its
``Telephony`` port to consult, resume and transfer."""

from __future__ import annotations

import contextlib
import datetime as dt

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    Forward,
    LiveAgent,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class Forwarding(DistributorCore):
    # ------------------------------------------- answering service: forward (F-S2)

    def _forward_targets(self, call: LiveCall, employee_id: int | None) -> tuple[list[str], int]:
        """Targets from the client's configuration, never from the request. An active
        exception (F-S3) overrides everything; else the chosen employee's (F-S4); else
        the client's own forward targets (standard handling, or a FAQ entry's forward)."""
        with self._read() as s:
            client = s.get(m.Client, call.client_id)
            assert client is not None  # forward() forwards only calls with a client
            now = self.now()
            exception = next(
                (e for e in client.exceptions if e.starts_at <= now < e.ends_at and e.handling),
                None,
            )
            if exception is not None:
                if exception.handling != m.Handling.FORWARD:
                    raise c.Refused(c.INVALID, "the current exception says: take a note")
                targets = [exception.forward_target1, exception.forward_target2]
                if not any(targets):
                    targets = [client.forward_target1, client.forward_target2]
            elif employee_id is not None:
                employee = s.get(m.Employee, employee_id)
                if employee is None or employee.client_id != client.id:
                    raise c.Refused(c.NOT_FOUND, f"employee_id: no employee {employee_id}")
                if employee.handling != m.Handling.FORWARD:
                    raise c.Refused(c.INVALID, "employee_id: this employee gets a note, not a call")
                targets = [employee.forward_target1, employee.forward_target2]
            else:
                targets = [client.forward_target1, client.forward_target2]
            return [t for t in targets if t], client.forward_timeout_seconds

    async def forward(self, agent_id: int, call_id: int, employee_id: int | None) -> None:
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("connected",))
        if call.client_id is None:
            raise c.Refused(c.INVALID, "only answering-service calls are forwarded")
        if call.hours in ("closed", "holiday"):
            raise c.Refused(c.ILLEGAL_STATE, "the client is closed: tell the hours, take a note")
        if call.forward is not None and call.forward.status in ("ringing", "announcing"):
            raise c.Refused(c.ILLEGAL_STATE, "a forward is already going on")
        targets, ring = self._forward_targets(call, employee_id)
        if not targets:
            raise c.Refused(c.INVALID, "no forward target is configured for this choice")
        call.forward = Forward(targets=targets, ring_seconds=ring)
        self.notifier.agents(agent_id)
        self._spawn(self._try_targets(call, agent), f"forward-{call_id}")

    async def _try_targets(self, call: LiveCall, agent: LiveAgent) -> None:
        fwd = call.forward
        assert fwd is not None  # set before this task starts
        while fwd is call.forward and fwd.index < len(fwd.targets):
            fwd.status = "ringing"
            self.notifier.agents(agent.agent_id)
            target = fwd.targets[fwd.index]
            channel = await self.phone.consult(
                call.call_id, call.channel_id, _agent_leg(call), target, fwd.ring_seconds
            )
            if fwd is not call.forward or call.phase != "connected":
                if channel:
                    await self.phone.hangup(channel)
                return  # cancelled, or the caller hung up meanwhile
            if channel:
                fwd.status = "announcing"
                fwd.channel = channel
                log.info("forward_announcing", call=call.call_id, target=target)
                self.notifier.agents(agent.agent_id)
                return
            log.info("forward_no_answer", call=call.call_id, target=target)
            fwd.index += 1
        await self._forward_failed(call, agent)

    async def _forward_failed(self, call: LiveCall, agent: LiveAgent) -> None:
        """Both targets failed: the agent is back with the caller and takes a note."""
        await self.phone.resume(call.call_id, call.channel_id, _agent_leg(call))
        if call.forward is not None:
            call.forward.status = "failed"
            call.forward.channel = None
        log.info("forward_failed", call=call.call_id)
        self.notifier.agents(agent.agent_id)

    def forward_target_left(self, channel_id: str) -> bool:
        """A target hung up: while the agent announced, it declined (try the next one);
        after the hand-over, the call is over."""
        for call in self.calls.values():
            fwd = call.forward
            if fwd and fwd.channel == channel_id and fwd.status == "connected":
                # The target hung up after the hand-over: the call is over for the caller too.
                self._release(call, gone=channel_id)
                return True
            if fwd and fwd.channel == channel_id and fwd.status == "announcing":
                fwd.channel = None
                fwd.index += 1
                agent = self.agents[_agent_of(call)]
                self._spawn(self._next_after_decline(call, agent), f"forward-{call.call_id}")
                return True
        return False

    async def _next_after_decline(self, call: LiveCall, agent: LiveAgent) -> None:
        assert call.forward is not None  # forward_target_left saw it
        if call.forward.index < len(call.forward.targets):
            await self._try_targets(call, agent)
        else:
            await self._forward_failed(call, agent)

    async def forward_connect(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("connected",))
        fwd = call.forward
        if fwd is None or fwd.status != "announcing" or fwd.channel is None:
            raise c.Refused(c.ILLEGAL_STATE, "nobody is on the line to hand the caller to")
        agent_channel = call.agent_channel
        call.agent_channel = None  # the agent's leg ends now; not a hang-up of the call
        fwd.status = "connected"
        call.phase = "forwarded"
        with self._tx() as s:
            row = s.get(m.Call, call_id)
            assert row is not None  # a call in memory has its row
            row.end_reason = f"forwarded to {fwd.targets[fwd.index]}"
        self._set_card(agent, None)
        log.info("forward_connected", call=call_id, target=fwd.targets[fwd.index])
        try:  # returns once the agent's leg has left Asterisk: only then is the agent free
            await self.phone.transfer(call_id, call.channel_id, _leg(agent_channel), fwd.channel)
        finally:
            with contextlib.suppress(c.Refused):  # e.g. logged out by a supervisor meanwhile
                self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)))
        self.notifier.everyone()
        self.dispatch()

    async def forward_cancel(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("connected",))
        fwd = call.forward
        if fwd is None or fwd.status not in ("ringing", "announcing"):
            raise c.Refused(c.ILLEGAL_STATE, "no forward is going on")
        call.forward = None  # stops _try_targets at its next step
        if fwd.channel:
            await self.phone.hangup(fwd.channel)
        await self.phone.resume(call.call_id, call.channel_id, _agent_leg(call))
        call.forward = Forward(
            targets=fwd.targets, ring_seconds=fwd.ring_seconds, index=fwd.index, status="failed"
        )
        self.notifier.agents(agent_id)

    async def take_note(
        self,
        agent_id: int,
        call_id: int,
        message: str,
        caller_name: str,
        callback_number: str,
        employee_id: int | None,
    ) -> None:
        from asterisk_cube.services.notes import NoteError, create_note

        agent = self._agent(agent_id)
        call = self._card_call(agent, call_id)
        if call.client_id is None:
            raise c.Refused(c.INVALID, "call notes are for answering-service calls")
        try:
            with self._tx() as s:
                create_note(
                    s,
                    call.client_id,
                    message,
                    caller_name=caller_name,
                    callback_number=callback_number or None,
                    employee_id=employee_id,
                    agent_id=agent_id,
                    call_id=call_id,
                )
        except NoteError as exc:
            raise c.Refused(c.INVALID, str(exc)) from None
        call.notes += 1
        call.registered = True  # a note is this call's registration
        if self.on_note is not None:
            self.on_note()
        self.notifier.agents(agent_id)


def _leg(channel: str | None) -> str:
    """The agent's leg of a connected call: answered, so known."""
    assert channel is not None, "a connected call without its agent's channel"
    return channel


def _agent_leg(call: LiveCall) -> str:
    return _leg(call.agent_channel)


def _agent_of(call: LiveCall) -> int:
    assert call.agent_id is not None, "a connected call without its agent"
    return call.agent_id
