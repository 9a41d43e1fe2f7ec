"""Power/predictive call flows, one task per line: dial the contact; when a person
answers, connect a free agent within ``connect_budget`` (F-D4) or abandon with the
message; then bridge and wait for either side to hang up. ``bridge_and_talk`` and
``agent_leg`` serve the preview flow too (:mod:`.preview`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

from . import records
from .assign import step_waiting
from .claims import Claim
from .outcomes import finish, finish_unanswered, release_pending_line
from .state import CampaignRun, DialerState, Line, caller_id_of, endpoint_of

log = get_logger(__name__)


async def hand_back(d: DialerState, line: Line, *, agent_no_answer: bool = False) -> None:
    """The agent's part of the call is over (``outbound_ended``), once its leg, hung up
    just before, has left Asterisk: until then the agent's phone still has that leg (a
    CANCEL or BYE on its way), and an agent given back at once (no wrap-up: a failed
    ring, a contact gone while connecting, a campaign without wrap-up) had its next call
    rung while the last one was still there: two channels on one phone. The wait is
    bounded by the adapter (``channel_watch.LEG_GONE_TIMEOUT``): never stranded."""
    channel = line.agent_channel
    if channel and not await d.phone.wait_destroyed(channel):
        log.warning("dialer_agent_leg_lingers", call=line.call_id, channel=channel)
    d.distributor.outbound_ended(line.call_id, agent_no_answer=agent_no_answer)


def start_pool_line(d: DialerState, run: CampaignRun, claim: Claim, call_id: int) -> None:
    line = d.new_line(run, claim, call_id, run.config.mode)
    line.phase = "ringing"
    line.dialed_at = d.monotonic()
    line.task = d.spawn(pool_line(d, line), f"dial-{line.call_id}")


async def pool_line(d: DialerState, line: Line) -> None:
    """Power/predictive: dial the contact; when it answers, connect a free agent within
    the budget or abandon."""
    tel = d.phone
    run, cfg = line.run, line.run.config
    try:
        dialed = d.now()
        if not core.in_window(cfg.rules, dialed):  # it closed since the claim
            release_pending_line(d, line)
            return
        channel = tel.new_channel_id()
        line.contact_channel = channel
        endpoint = tel.endpoint_for(line.claim.phone)
        # committed before the originate: a restart finds the channel it dialed
        await d.committed(
            "dialed", lambda s: records.contact_dialed(s, line.call_id, channel, endpoint, dialed)
        )
        run.count_dial()
        result = await tel.dial_contact(
            line.call_id,
            channel,
            line.claim.phone,
            caller_id=cfg.caller_id,
            timeout=d.ring_timeout,
            amd=cfg.amd,
        )
        if not result.answered:
            run.learning.observe_dial(result.ring_seconds, False, line.odds_key)
            await finish_unanswered(d, line, result)
            return
        if result.amd_status == "MACHINE":
            run.learning.observe_dial(result.ring_seconds, False, line.odds_key)
            await tel.hangup(channel)
            await finish(d, line, m.CallState.MACHINE, "machine", Outcome.MACHINE)
            return
        run.learning.observe_dial(result.ring_seconds, True, line.odds_key)
        line.answered_at = d.monotonic()
        line.answered_wall = d.now()  # written once bridged: keep the 2 s path short
        await connect_answered(d, line)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("dialer_line_failed", call=line.call_id)
        if line.call_id in d.lines:
            await tel.hangup(line.contact_channel)
            await tel.hangup(line.agent_channel)
            if line.agent_id is not None:
                with contextlib.suppress(Exception):
                    await hand_back(d, line)
            await finish(d, line, m.CallState.FAILED, "error", Outcome.FAILED)


async def connect_answered(d: DialerState, line: Line) -> None:
    """An answered contact: wait for a free agent, ring it with auto-answer, bridge; or
    abandon when the budget runs out first.

    The call's mixing bridge is made with the contact in it at once, beside the wait for
    an agent and its ring (``open_bridge``: two requests off the 2 s path), so that the
    agent's answer costs one request (``join``), not three behind a busy loop and a busy
    Asterisk. Every way out that has not bridged the agent destroys it (``end_call``, one
    ``DELETE``); a talking call keeps it (at close too: talking calls go on)."""
    tel = d.phone
    opened = asyncio.ensure_future(tel.open_bridge(line.call_id, [line.contact_leg]))
    try:
        await _connect(d, line, opened)
    finally:
        if line.phase != "talking":
            await close_bridge(d, line, opened)


async def close_bridge(d: DialerState, line: Line, opened: asyncio.Future[None]) -> None:
    """Destroy the call's bridge once its making is over (a ``DELETE`` sent before the
    ``POST`` that makes it would leave it in Asterisk)."""
    if not opened.done():
        await asyncio.wait({opened})
    if not opened.cancelled() and opened.exception() is not None:
        log.info("dialer_bridge_open_failed", call=line.call_id, error=repr(opened.exception()))
    await d.phone.end_call(line.call_id)


async def _connect(d: DialerState, line: Line, opened: asyncio.Future[None]) -> None:
    tel = d.phone
    run = line.run
    # the agent must have answered by then: bridging takes a few ms more
    assert line.answered_at is not None  # called once the contact answered
    deadline = line.answered_at + d.connect_budget - d.bridge_margin
    gone = tel.gone(line.contact_leg)
    line.phase = "waiting"
    line.waiter = asyncio.get_running_loop().create_future()
    run.waiting.append(line)
    step_waiting(d, run)
    first: set[asyncio.Future[Any]] = {line.waiter, gone}
    await asyncio.wait(
        first,
        timeout=max(0.0, deadline - d.monotonic()),
        return_when=asyncio.FIRST_COMPLETED,
    )
    if line in run.waiting:
        run.waiting.remove(line)
    if not line.waiter.done():
        line.waiter.cancel()
        if gone.done():
            await finish(
                d, line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED
            )
        else:
            await abandon(d, line, "no_agent")
        return
    agent: DialerAgent = line.waiter.result()
    d.probes.agent_waits.observe(d.monotonic() - line.answered_at)
    line.phase = "connecting"
    agent_channel = tel.new_channel_id(agent=True)
    if not d.distributor.leg_originated(line.call_id, agent_channel):
        # the desk's Hang up came first (the card shows the call once the agent is
        # taken): its release hangs the contact up; no phone is rung
        await tel.hangup(line.contact_channel)
        await hand_back(d, line)
        await finish(d, line, m.CallState.ABANDONED, "agent_hangup_connecting", Outcome.ABANDONED)
        return
    line.agent_channel = agent_channel  # reported: the desk's Hang up ends it too
    rung = d.monotonic()
    ring = asyncio.ensure_future(
        tel.ring_agent(
            line.call_id,
            agent_channel,
            endpoint_of(agent),
            auto_answer=True,
            timeout=max(0.1, deadline - rung),
            caller_id=caller_id_of(line),
        )
    )
    either: set[asyncio.Future[Any]] = {ring, gone}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if gone.done():  # the contact hung up before the agent was there
        ok = await ring if ring.done() else False
        if not ring.done():
            ring.cancel()
        await tel.hangup(agent_channel)
        await agent_leg(d, line, agent, rung, ok)
        await hand_back(d, line)
        await finish(d, line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED)
        return
    ok = ring.result()
    if not ok:
        await agent_leg(d, line, agent, rung, False)
        given = deadline - rung
        log.warning(
            "dialer_agent_no_auto_answer",
            call=line.call_id,
            agent=agent.agent_id,
            given=round(given, 3),
        )
        # a phone that had a fair chance and did not answer by itself is paused (it would
        # abandon the next contact too); one we gave too little time stays ready. Given
        # back beside the abandon message, which must not wait for the agent's leg.
        paused = given >= d.fair_answer_time
        d.spawn(hand_back(d, line, agent_no_answer=paused), f"hand-back-{line.call_id}")
        await abandon(d, line, "agent_no_answer")
        return
    d.agent_answer_delays.observe(d.monotonic() - rung)
    await bridge_and_talk(d, line, agent, rung, opened=opened)


def agent_leg_write(
    d: DialerState, line: Line, agent: DialerAgent, rung: float, ok: bool
) -> Callable[[Session], None]:
    """The agent's leg row, its values taken now (on the loop): rung at ``rung``
    (monotonic), answered now or rang until now. Returns the write, for one transaction."""
    now = d.now()
    started = now - dt.timedelta(seconds=d.monotonic() - rung)
    call_id, channel, endpoint = line.call_id, line.agent_channel or "", agent.endpoint or ""

    def write(s: Session) -> None:
        records.agent_leg(
            s,
            call_id,
            agent.agent_id,
            channel,
            endpoint,
            started,
            now if ok else None,
            None if ok else "no_answer",
            ended=None if ok else now,  # it rang until now: the ring time is kept
        )

    return write


async def agent_leg(d: DialerState, line: Line, agent: DialerAgent, rung: float, ok: bool) -> None:
    """The agent's leg row, written now (an unanswered or unbridged leg)."""
    await d.committed("agent_leg", agent_leg_write(d, line, agent, rung, ok))


async def bridge_and_talk(
    d: DialerState,
    line: Line,
    agent: DialerAgent,
    rung: float | None = None,
    *,
    opened: asyncio.Future[None] | None = None,
) -> None:
    """Bridge contact and agent, then wait for either to hang up. ``rung``: the agent
    leg still has to be written (power/predictive write it only now). ``opened``: the
    making of the call's bridge with the contact in it (power/predictive), so only the
    agent's leg is added; without it (preview) the bridge is made with both."""
    tel = d.phone
    bridging = d.monotonic()
    try:
        if opened is None:
            await tel.bridge(line.call_id, [line.contact_leg, line.agent_leg])
        else:
            await asyncio.shield(opened)  # made while the phone rang: done by now, as a rule
            await tel.join(line.call_id, line.agent_leg)
    except Exception as exc:  # a leg hung up just now
        await not_bridged(d, line, agent, rung, exc)
        return
    d.probes.bridge_seconds.observe(d.monotonic() - bridging)
    if line.answered_at is not None:
        d.connect_delays.observe(d.monotonic() - line.answered_at)
    now, call_id, answered = d.now(), line.call_id, line.answered_wall
    leg = agent_leg_write(d, line, agent, rung, True) if rung is not None else None

    def connected(s: Session) -> None:
        if leg is not None:
            records.contact_answered(s, call_id, answered or now)
            leg(s)
        records.call_connected(s, call_id, agent.agent_id, now)

    # committed before the desk hears of it (and before the call's end is written)
    await d.committed("bridged", connected)
    d.distributor.outbound_connected(line.call_id, line.contact_leg, line.agent_channel)
    line.phase = "talking"
    talk_started = d.monotonic()
    gone_contact = tel.gone(line.contact_leg)
    gone_agent = tel.gone(line.agent_leg)
    await asyncio.wait({gone_contact, gone_agent}, return_when=asyncio.FIRST_COMPLETED)
    reason = "contact_hangup" if gone_contact.done() else "agent_hangup"
    line.phase = "ending"
    await tel.hangup(line.agent_channel if gone_contact.done() else line.contact_channel)
    await tel.end_call(line.call_id)
    line.run.learning.observe_talk(d.monotonic() - talk_started)
    await hand_back(d, line)
    await finish(d, line, m.CallState.ENDED, reason, Outcome.FINAL)


async def not_bridged(
    d: DialerState, line: Line, agent: DialerAgent, rung: float | None, exc: Exception
) -> None:
    tel = d.phone
    gone = tel.gone(line.contact_leg)
    await asyncio.wait({gone}, timeout=0.5)  # its hang-up event may be on its way
    contact_gone = gone.done()
    log.info("dialer_bridge_failed", call=line.call_id, contact_gone=contact_gone, error=exc)
    if rung is not None:
        await agent_leg(d, line, agent, rung, True)
    await tel.hangup(line.agent_channel)
    await tel.end_call(line.call_id)
    await hand_back(d, line)
    if contact_gone or line.mode == m.DialMode.PREVIEW.value:
        await finish(d, line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED)
    else:
        await abandon(d, line, "agent_gone")


async def abandon(d: DialerState, line: Line, why: str) -> None:
    """No agent within the budget: the message, hang up, logged as abandoned."""
    line.phase = "ending"
    line.abandoned = True  # counted by the pacer from now on, not when the message ends
    if line.answered_at is not None:
        d.abandon_waits.observe(d.monotonic() - line.answered_at)
    log.info("dialer_abandon", call=line.call_id, campaign=line.run.config.name, why=why)
    played = await d.phone.play(line.contact_leg, d.abandon_media, timeout=d.abandon_timeout)
    # a contact who hung up before the message ended (under load: while we were late to
    # decide) did not miss it because of us: told apart from a message that failed.
    # A hang-up during the message fails the playback just before the channel's
    # StasisEnd (same event queue): give that event a moment, as not_bridged does.
    left = False
    if not played:
        gone = d.phone.gone(line.contact_leg)
        await asyncio.wait({gone}, timeout=0.5)
        left = gone.done()
    await d.phone.hangup(line.contact_channel)
    if played:
        reason = f"abandoned_{why}"
    else:
        reason = f"abandoned_{why}_contact_left" if left else f"abandoned_{why}_no_message"
    await finish(d, line, m.CallState.ABANDONED, reason, Outcome.ABANDONED)
