"""How a call ends: the one place that decides, for a channel that left (``channel_left``) or a
desk's hang-up, what happens to the call and which of its other legs and bridges go.

Every channel the product creates for a call is reported before it rings
(``leg_originated``), so ``LiveCall.legs`` knows all of them; every channel leaving the
Stasis app comes to ``channel_left``, which returns the ``Release`` actions it took (the
call's remaining channels to hang up and its bridges to remove) and carries them out through
the ``Telephony`` port. The ARI adapter only translates events into these calls. A mixin
of ``Distributor``."""

from __future__ import annotations

import contextlib
import datetime as dt

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import records as rec
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    CALLBACK_MODE,
    LiveAgent,
    LiveCall,
    Release,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core.numbers import is_withheld
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class Lifecycle(DistributorCore):
    _releases: list[Release] | None = None  # collected while ``channel_left`` runs

    def caller_left(self, channel_id: str, cause: str = "hangup") -> None:
        """The caller's channel left the app (hung up). Waiting → missed call (F-I7)."""
        call_id = self.by_channel.pop(channel_id, None)
        call = self.calls.get(call_id) if call_id is not None else None
        if call is None or call.phase == "ended":
            return
        now = self.now()
        self._write(rec.end_leg, channel_id, now, cause)
        # Whatever the phase: the agent's phone (ringing or talking) and a forward target
        # go too; the agent is given back once its leg has left Asterisk (_once_released).
        self._release(call, gone=channel_id)
        missed = call.phase in ("waiting", "offered", "connecting")
        if missed:
            if self._xn_foreign(call):
                pass  # another node's agent: its node learns it from our 'ended' (crossnode)
            elif call.phase == "offered":
                self._end_offer(call, m.OfferResult.WITHDRAWN)
                self._apply(self.agents[_agent_of(call)], ag.OfferWithdrawn())
            elif call.phase == "connecting":
                agent = self.agents[_agent_of(call)]
                self._set_card(agent, None)
                self._once_released(call, agent, dt.timedelta(0))
            call.phase = "missed"  # a connect still running for it must not act on it
            self._write(
                rec.update_call,
                call.call_id,
                state=m.CallState.MISSED,
                ended_at=now,
                end_reason="caller_hangup_waiting",
            )
            self._record_missed(call.call_id, call.line_id, call.caller, now)
            self.calls.pop(call.call_id, None)
            log.info("call_missed", call=call.call_id, caller=call.caller)
        elif call.phase == "forwarded":
            # end_reason keeps who it was forwarded to
            self._write(rec.update_call, call.call_id, state=m.CallState.ENDED, ended_at=now)
            self.calls.pop(call.call_id, None)
        elif call.phase == "connected":
            self._write(
                rec.update_call,
                call.call_id,
                state=m.CallState.ENDED,
                ended_at=now,
                end_reason="caller_hangup",
            )
            self._call_finished(call)
        if call.forward is not None and call.phase != "forwarded":
            call.forward = None
        self._xn_ended(call)
        also = [call.agent_id] if call.agent_id else []
        if missed:  # the line's queue and its missed calls changed on every desk showing it
            self.notifier.line(call.line_id, *also)
        else:  # the queue did not change (it left it when accepted): the agent's desk only
            self.notifier.agents(*also)
        self.dispatch()

    def agent_leg_left(self, call_id: int, gone: str | None = None) -> None:
        """The agent hung up (its phone: ``gone`` is its channel; the desk's Hang up: None).
        The call ends and every other leg is hung up: caller, forward target, and the
        agent's phone itself when the desk asked."""
        call = self.calls.get(call_id)
        if call is None or call.phase != "connected":
            return
        if call.remote_node is not None:  # another node's call: it ends every leg
            self._xn_hangup(call)
            return
        self._write(
            rec.update_call,
            call_id,
            state=m.CallState.ENDED,
            ended_at=self.now(),
            end_reason="agent_hangup",
        )
        self.by_channel.pop(call.channel_id, None)
        self._release(call, gone=gone)
        self._call_finished(call)
        call.forward = None
        self._xn_ended(call)
        self.notifier.everyone()
        self.dispatch()

    def _release(self, call: LiveCall, gone: str | None = None) -> Release | None:
        """Hang up every leg of ``call`` still there (all but ``gone``, which just left) and
        remove its bridges: the one place that decides what ending a call hangs up."""
        channels = tuple(ch for ch in call.legs() if ch != gone)
        if not channels and call.answered_at is None and call.forward is None:
            return None  # it never got further than the queue: nothing to hang up, no bridge
        action = Release(call.call_id, channels)
        if self._releases is not None:
            self._releases.append(action)
        if self.telephony is not None:
            task = self._spawn(
                self.telephony.release(call.call_id, list(channels)), f"release-{call.call_id}"
            )
            phone = [ch for ch in channels if ch == call.agent_channel or ch in call.ringing]
            if not call.dialer_owned and self._legs_up(phone):
                call.agent_release = task  # the agent's phone is being hung up
        call.ringing = []
        return action

    def _legs_up(self, channels: list[str]) -> bool:
        """Whether Asterisk still has one of these legs we rang (``Telephony.leg_up``, from
        its events: no request)."""
        telephony = self.telephony
        return telephony is not None and any(telephony.leg_up(ch) for ch in channels)

    def _once_released(self, call: LiveCall, agent: LiveAgent, wrap: dt.timedelta) -> None:
        """The agent's part of ``call`` is over (``CallEnded`` with ``wrap``): at once if its
        phone has no leg of the call left, else once the release hanging that leg up is
        done, i.e. the leg has left Asterisk (``Telephony.release``: its
        ``ChannelDestroyed``, bounded). ``DELETE /channels`` returns before the leg is
        gone: an agent freed at once (no wrap-up) had its next call rung on a phone still
        holding the last one. Meanwhile the desk still shows the call (milliseconds)."""

        def free(notify: bool) -> None:
            with contextlib.suppress(c.Refused):  # e.g. logged out by a supervisor meanwhile
                self._apply(agent, ag.CallEnded(wrap_up=wrap))
            if notify:
                self._after_agent_change(agent)

        pending = call.agent_release
        call.agent_release = None
        if pending is None or pending.done():
            free(notify=False)  # the caller of this notifies and dispatches
            return
        pending.add_done_callback(lambda _task: free(notify=True))

    def leg_originated(self, call_id: int, channel_id: str) -> bool:
        """The adapter is ringing ``channel_id`` for this call (an agent's phone, a forward
        target, a callback's leg): it is hung up with the call even before it answers.
        False if the call is already over (or a callback already lost a leg): don't ring."""
        call = self.calls.get(call_id)
        if call is None or call.phase in ("ended", "missed") or call.lost_leg:
            return False
        call.ringing.append(channel_id)
        return True

    def channel_left(self, channel_id: str) -> list[Release]:
        """A channel of ours left the Stasis app (hung up, by whichever side). The one entry
        for every ending that Asterisk reports: returns what it ended because of it (the
        call's other legs and its bridges, from ``LiveCall.legs``), already handed to the
        ``Telephony`` port; nothing if the channel was the last of its call or not ours."""
        self._releases = []
        try:
            self._channel_left(channel_id)
            return self._releases
        finally:
            self._releases = None

    def _channel_left(self, channel_id: str) -> None:
        if self.forward_target_left(channel_id):
            return
        for call in self.calls.values():
            if (
                call.mode == CALLBACK_MODE
                and call.phase == "connecting"
                and channel_id in call.ringing
            ):
                # A callback leg hung up before both were bridged: drop the other; the
                # callback task then records the failure.
                call.lost_leg = True
                self._release(call, gone=channel_id)
                return
        call_id = self.call_of_agent_channel(channel_id)
        if call_id is not None:
            self.agent_leg_left(call_id, gone=channel_id)
        elif channel_id in self.by_channel:
            self.caller_left(channel_id)

    def _record_missed(
        self, call_id: int, line_id: int | None, caller: str, at: dt.datetime
    ) -> None:
        if is_withheld(caller):
            return  # nobody can call a withheld caller back: not on the missed-call list
        missed_id = self.ids.next(m.MissedCall)
        self.counts[("missed", line_id, None)] += 1
        self._write(rec.insert_missed, missed_id, call_id, line_id, caller, at)
        self.missed[missed_id] = (line_id, caller, at)

    def _call_finished(self, call: LiveCall) -> None:
        """Talk is over: the agent goes to wrap-up; the card stays for registration."""
        call.phase = "ended"
        foreign = self._xn_foreign(call)  # another node's agent: that node moves it
        agent = self.agents.get(call.agent_id) if call.agent_id and not foreign else None
        if agent is None:
            self.calls.pop(call.call_id, None)
            return
        agent.on_outbound_call = False  # also when the desk hung up an outbound call
        wrap = dt.timedelta(seconds=self._wrap_up_seconds(call))
        self._once_released(call, agent, wrap)
        if call.contact_id:
            self._write(rec.set_last_agent, call.contact_id, agent.agent_id)

    def _wrap_up_seconds(self, call: LiveCall) -> int:
        if call.wrap_up_seconds is not None:
            return call.wrap_up_seconds
        return 0 if not call.forced_registration else 5


def _agent_of(call: LiveCall) -> int:
    """The agent of an offered or connecting call (set with the phase)."""
    assert call.agent_id is not None, f"call {call.call_id} {call.phase} without an agent"
    return call.agent_id
