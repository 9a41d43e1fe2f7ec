"""Dialer feedback (F-E4..F-E6): campaign topics with an outcome registered on a call act
on its contact, and the desk schedules callbacks. While the call still goes on, the
outcome waits for its end (else the call's own outcome would overwrite it)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.state import EnquiryRegistered
from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

from . import records
from .campaigns import rules_of
from .state import DialerState

log = get_logger(__name__)


def on_enquiry(d: DialerState, event: EnquiryRegistered) -> None:
    """Campaign topics with an outcome (F-E4, F-E5, F-E6) act on the call's contact."""
    if event.contact_id is None:
        return
    with d.tx("feedback") as s:
        outcomes = {
            t.outcome
            for t in s.scalars(select(m.EnquiryTopic).where(m.EnquiryTopic.id.in_(event.topic_ids)))
        }
    if m.TopicOutcome.CALLBACK in outcomes:
        if callback_scheduled(d, event):
            return  # the agent set the time with schedule_callback: keep it
        due = d.now() + retry_interval(d, event)
        apply(d, event, Outcome.CALLBACK, core.Callback(due, event.agent_id, event.comment))
    elif m.TopicOutcome.RETRY in outcomes:
        apply(d, event, Outcome.MACHINE, None)
    elif m.TopicOutcome.FINAL in outcomes:
        apply(d, event, Outcome.FINAL, None)


def callback_scheduled(d: DialerState, event: EnquiryRegistered) -> bool:
    line = d.lines.get(event.call_id)
    if line is not None and line.feedback is not None:
        return line.feedback[0] is Outcome.CALLBACK
    with d.tx("feedback") as s:
        call = s.get(m.Call, event.call_id)
        if call is None:
            return False
        return (
            s.scalar(
                select(m.ScheduledCallback.id).where(
                    m.ScheduledCallback.contact_id == event.contact_id,
                    m.ScheduledCallback.status.in_(
                        (m.CallbackStatus.PENDING, m.CallbackStatus.QUEUED)
                    ),
                    m.ScheduledCallback.created_at >= call.started_at,
                )
            )
            is not None
        )


def retry_interval(d: DialerState, event: EnquiryRegistered) -> dt.timedelta:
    run = d.runs.get(event.campaign_id or -1)
    if run is not None:
        return run.config.rules.retry_interval
    return dt.timedelta(hours=1)


def schedule_callback(
    d: DialerState,
    agent_id: int,
    call_id: int,
    due_at: dt.datetime,
    *,
    for_me: bool = True,
    comment: str = "",
) -> None:
    """F-E6 from the desk: call this contact back at ``due_at``, for this agent (reserved
    for the campaign's N minutes) or for all agents; the comment is shown on delivery."""
    if due_at.tzinfo is None:
        raise c.Refused(c.INVALID, "due_at: give a time with its zone")
    with d.tx("feedback") as s:
        call = s.get(m.Call, call_id)
        if call is None or call.agent_id != agent_id or call.contact_id is None:
            raise c.Refused(c.NOT_FOUND, f"call {call_id} is not yours")
        contact_id, campaign_id = call.contact_id, call.campaign_id
    event = EnquiryRegistered(call_id, agent_id, campaign_id, contact_id, (), comment, None)
    callback = core.Callback(due_at, agent_id if for_me else None, comment)
    apply(d, event, Outcome.CALLBACK, callback)


def apply(
    d: DialerState, event: EnquiryRegistered, outcome: Outcome, callback: core.Callback | None
) -> None:
    line = d.lines.get(event.call_id)
    if line is not None and line.phase in ("talking", "connecting", "ending"):
        # the call goes on (or is hanging up: its end is written next): the outcome
        # applies when it ends, else the call's own outcome would overwrite it
        line.feedback = (outcome, callback, event.agent_id)
        return
    with d.tx("feedback") as s:
        contact = s.get(m.Contact, event.contact_id)
        campaign = s.get(m.Campaign, contact.campaign_id) if contact else None
        if contact is None or campaign is None or campaign.direction != m.Direction.OUTBOUND:
            return
        records.apply_outcome(
            s, contact.id, outcome, rules_of(campaign), d.now(), callback, event.agent_id
        )
        if outcome is Outcome.MACHINE:
            records.correct_attempt(s, event.call_id, m.CallState.MACHINE)
    log.info("dialer_feedback", call=event.call_id, contact=event.contact_id, outcome=outcome.value)
