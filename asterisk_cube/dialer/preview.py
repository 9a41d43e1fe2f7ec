"""The preview flow (F-D3), also how scheduled callbacks are delivered in every mode:
ring the agent first (its desk shows the contact and the callback's comment); on answer
dial the contact and bridge them. An agent who does not answer is paused and the contact
goes to the next free agent who has not let it ring (:mod:`.rounds`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from sqlalchemy.orm import Session

from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

from . import records
from .assign import take_agent
from .claims import Claim
from .flows import agent_leg, bridge_and_talk, hand_back
from .outcomes import finish, finish_unanswered, release_pending_line
from .state import CampaignRun, DialerState, Line, caller_id_of, endpoint_of

log = get_logger(__name__)


def start_preview(
    d: DialerState,
    run: CampaignRun,
    claim: Claim,
    call_id: int,
    agent: DialerAgent,
    now: dt.datetime,
) -> bool:
    """A claimed contact for this agent; given back if the agent cannot take it."""
    line = d.new_line(run, claim, call_id, m.DialMode.PREVIEW.value)
    if not offer_preview(d, line, agent):
        release_pending_line(d, line)
        return False
    return True


def offer_preview(d: DialerState, line: Line, agent: DialerAgent) -> bool:
    if not take_agent(d, line, agent, connected=False):
        return False
    line.phase = "agent"
    line.task = d.spawn(preview_line(d, line, agent), f"preview-{line.call_id}")
    return True


async def preview_line(d: DialerState, line: Line, agent: DialerAgent) -> None:
    """Preview (and callback delivery): ring the agent; on answer dial the contact and
    bridge them. An agent who does not answer is paused and the contact goes to the
    next free agent."""
    tel = d.phone
    cfg = line.run.config
    try:
        agent_channel = tel.new_channel_id(agent=True)
        line.agent_channel = agent_channel
        rung = d.monotonic()
        # reported first: the desk's Hang up ends the legs it knows (False: it already did)
        ok = d.distributor.leg_originated(line.call_id, agent_channel) and await tel.ring_agent(
            line.call_id,
            agent_channel,
            endpoint_of(agent),
            auto_answer=False,
            timeout=d.agent_ring_timeout,
            caller_id=caller_id_of(line),
        )
        await agent_leg(d, line, agent, rung, ok)
        if not ok:
            log.info("dialer_preview_no_answer", call=line.call_id, agent=agent.agent_id)
            await hand_back(d, line, agent_no_answer=True)
            tel.forget(agent_channel)
            line.agent_channel = None
            line.agent_id = None
            line.declined.add(agent.agent_id)
            line.phase = "new"
            if cfg.running:
                line.run.pending_preview.append(line)
            else:
                release_pending_line(d, line)
            d.wake()
            return
        tone = await tel.start_tone(agent_channel)
        dialed = d.now()
        if not core.in_window(cfg.rules, dialed):  # it closed meanwhile
            await tel.hangup(agent_channel)
            await hand_back(d, line)
            release_pending_line(d, line)
            return
        channel = tel.new_channel_id()
        line.contact_channel = channel
        if not d.distributor.leg_originated(line.call_id, channel):  # the desk hung up
            await tel.hangup(agent_channel)
            await hand_back(d, line)
            release_pending_line(d, line)
            return
        line.phase = "ringing"
        line.dialed_at = d.monotonic()
        endpoint, callback_id = tel.endpoint_for(line.claim.phone), line.claim.callback_id

        def was_dialed(s: Session) -> None:
            if callback_id is not None:
                records.callback_delivered(s, callback_id, dialed)
            records.contact_dialed(
                s, line.call_id, channel, endpoint, dialed, agent_id=agent.agent_id
            )

        # committed before the originate: a restart finds the channel it dialed
        await d.committed("dialed", was_dialed)
        line.run.count_dial()
        dial = asyncio.ensure_future(
            tel.dial_contact(
                line.call_id,
                channel,
                line.claim.phone,
                caller_id=cfg.caller_id,
                timeout=d.ring_timeout,
                amd=False,
            )
        )
        gone_agent = tel.gone(agent_channel)
        await asyncio.wait({dial, gone_agent}, return_when=asyncio.FIRST_COMPLETED)
        if not dial.done():  # the agent hung up while the contact rang
            await tel.hangup(channel)
            result = await dial
            if result.answered:
                await tel.hangup(channel)
            await hand_back(d, line)
            await finish(d, line, m.CallState.NO_ANSWER, "agent_hangup_ringing", Outcome.NO_ANSWER)
            return
        result = dial.result()
        await tel.stop_playback(tone)
        line.run.learning.observe_dial(result.ring_seconds, result.answered, line.odds_key)
        if not result.answered or gone_agent.done():
            await tel.hangup(agent_channel)
            if result.answered:
                await tel.hangup(channel)
            await hand_back(d, line)
            await finish_unanswered(d, line, result)
            return
        line.answered_at = d.monotonic()
        answered = d.now()
        await d.committed("answered", lambda s: records.contact_answered(s, line.call_id, answered))
        line.phase = "connecting"
        await bridge_and_talk(d, line, agent)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("dialer_preview_failed", call=line.call_id)
        if line.call_id in d.lines:
            await tel.hangup(line.agent_channel)
            await tel.hangup(line.contact_channel)
            with contextlib.suppress(Exception):
                await hand_back(d, line)
            await finish(d, line, m.CallState.FAILED, "error", Outcome.FAILED)
