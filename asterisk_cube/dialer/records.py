"""What the dialer writes to the database: calls, legs, attempts, contact outcomes and
scheduled callbacks (F-D1, F-E5, F-E6).

Every function takes an open session (the caller's transaction) and plain values, so
the service and the CLI share them and unit tests drive them against SQLite.

A dialer call is one ``calls`` row (``direction=outbound``, ``kind`` = the campaign's mode)
with a ``contact`` leg and, once connected, an ``agent`` leg. Each dial of the contact is
one ``contact_attempts`` row whose ``result`` the outbound report counts (``ended`` =
reached, ``abandoned``, ``no_answer``, ``machine``, ``failed``). The contact row itself
moves through :func:`asterisk_cube.core.contacts.record_outcome`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m

from .claims import PENDING_CALLBACK, Claim, contact_state, write_state
from .pacer import HistoryCall

DIALER_KINDS = (m.CallKind.PREVIEW, m.CallKind.POWER, m.CallKind.PREDICTIVE)
REACHED = (m.CallState.CONNECTED, m.CallState.ENDED)
PERSON = (m.CallState.CONNECTED, m.CallState.ENDED, m.CallState.ABANDONED)


def open_call(
    s: Session,
    claim: Claim,
    mode: str,
    node: str,
    now: dt.datetime,
    caller_id: str | None = None,
    call_id: int | None = None,
) -> int:
    """The call row for a claimed contact (before anything is dialed). ``call_id``: an id
    from the process's ``db.ids`` allocator, which the distributor's write-behind inserts
    share (None: the database picks one)."""
    row = m.Call(
        id=call_id,
        direction=m.Direction.OUTBOUND,
        kind=m.CallKind(mode),
        state=m.CallState.DIALING,
        campaign_id=claim.campaign_id,
        contact_id=claim.contact_id,
        caller_number=caller_id or "",
        dialed_number=claim.phone,
        node=node,
        started_at=now,
    )
    s.add(row)
    s.flush()
    return row.id


def contact_dialed(
    s: Session,
    call_id: int,
    channel_id: str,
    endpoint: str,
    now: dt.datetime,
    agent_id: int | None = None,
) -> int:
    """The contact is being dialed now: one attempt (and the contact leg)."""
    call = s.get_one(m.Call, call_id)
    call.channel_id = channel_id
    s.add(
        m.CallLeg(
            call_id=call_id,
            role=m.LegRole.CONTACT,
            channel_id=channel_id,
            endpoint=endpoint,
            started_at=now,
        )
    )
    attempt = m.ContactAttempt(
        contact_id=call.contact_id,
        campaign_id=call.campaign_id,
        call_id=call_id,
        agent_id=agent_id,
        started_at=now,
    )
    s.add(attempt)
    s.flush()
    return attempt.id


def _leg(s: Session, call_id: int, role: m.LegRole, channel_id: str | None = None):
    query = select(m.CallLeg).where(m.CallLeg.call_id == call_id, m.CallLeg.role == role)
    if channel_id is not None:
        query = query.where(m.CallLeg.channel_id == channel_id)
    return s.scalar(query.order_by(m.CallLeg.id.desc()).limit(1))


def contact_answered(s: Session, call_id: int, now: dt.datetime) -> None:
    leg = _leg(s, call_id, m.LegRole.CONTACT)
    if leg is not None and leg.answered_at is None:
        leg.answered_at = now


def agent_leg(
    s: Session,
    call_id: int,
    agent_id: int,
    channel_id: str,
    endpoint: str,
    started: dt.datetime,
    answered: dt.datetime | None,
    cause: str | None = None,
    ended: dt.datetime | None = None,
) -> None:
    """An agent leg: answered (``answered`` set) or not (``cause`` says why; ``ended``: when
    its phone stopped ringing, so ``ended - started`` is the ring time)."""
    s.add(
        m.CallLeg(
            call_id=call_id,
            role=m.LegRole.AGENT,
            channel_id=channel_id,
            endpoint=endpoint,
            agent_id=agent_id,
            started_at=started,
            answered_at=answered,
            ended_at=None if answered else (ended or started),
            cause=cause,
        )
    )


def call_connected(s: Session, call_id: int, agent_id: int, now: dt.datetime) -> None:
    call = s.get_one(m.Call, call_id)
    call.state = m.CallState.CONNECTED
    call.answered_at = now
    call.agent_id = agent_id
    attempt = _open_attempt(s, call_id)
    if attempt is not None:
        attempt.agent_id = agent_id


def _open_attempt(s: Session, call_id: int) -> m.ContactAttempt | None:
    return s.scalar(
        select(m.ContactAttempt)
        .where(m.ContactAttempt.call_id == call_id)
        .order_by(m.ContactAttempt.id.desc())
        .limit(1)
    )


def call_finished(
    s: Session,
    call_id: int,
    state: m.CallState,
    reason: str,
    now: dt.datetime,
) -> None:
    """The call is over: its state and end reason, open legs ended, the attempt's result."""
    call = s.get_one(m.Call, call_id)
    if call is None:
        return
    call.state = state
    call.ended_at = now
    call.end_reason = reason[:80]
    for leg in s.scalars(
        select(m.CallLeg).where(m.CallLeg.call_id == call_id, m.CallLeg.ended_at.is_(None))
    ):
        leg.ended_at = now
        leg.cause = leg.cause or reason[:80]
    attempt = _open_attempt(s, call_id)
    if attempt is not None and attempt.ended_at is None:
        attempt.ended_at = now
        attempt.result = state


def correct_attempt(s: Session, call_id: int, state: m.CallState) -> None:
    """The agent's feedback corrects what the dialer saw (e.g. reached -> machine, F-E5)."""
    attempt = _open_attempt(s, call_id)
    if attempt is not None:
        attempt.result = state


# ------------------------------------------------------------------- outcomes


def apply_outcome(
    s: Session,
    contact_id: int,
    outcome: Outcome,
    rules: core.CampaignRules,
    now: dt.datetime,
    callback: core.Callback | None = None,
    created_by: int | None = None,
) -> core.ContactState | None:
    """Run the core's ``record_outcome`` on the contact row; a callback outcome adds the
    ``scheduled_callbacks`` row (any other pending callback of the contact is cancelled)."""
    row = s.get(m.Contact, contact_id)
    if row is None:
        return None
    new = core.record_outcome(contact_state(s, row), outcome, rules, now, callback)
    write_state(row, new)
    for pending in s.scalars(
        select(m.ScheduledCallback).where(
            m.ScheduledCallback.contact_id == contact_id,
            m.ScheduledCallback.status.in_(PENDING_CALLBACK),
        )
    ):
        pending.status = m.CallbackStatus.CANCELLED
    if outcome is Outcome.CALLBACK and callback is not None:
        s.add(
            m.ScheduledCallback(
                contact_id=contact_id,
                campaign_id=row.campaign_id,
                agent_id=callback.agent_id,
                due_at=callback.due_at,
                comment=callback.comment,
                created_by=created_by,
                created_at=now,
            )
        )
        s.flush()
    return new


def callback_delivered(s: Session, callback_id: int, now: dt.datetime) -> None:
    row = s.get(m.ScheduledCallback, callback_id)
    if row is not None and row.status in PENDING_CALLBACK:
        row.status = m.CallbackStatus.DELIVERED
        row.delivered_at = now


# ---------------------------------------------------------------- statistics


def abandon_counts(s: Session, campaign_id: int, since: dt.datetime) -> tuple[int, int]:
    """``(abandoned, answered by a person)`` of a campaign's attempts started since ``since``
    (the pacer's window; the outbound report counts the same way)."""
    a = m.ContactAttempt
    rows = dict(
        s.execute(
            select(a.result, func.count())
            .where(a.campaign_id == campaign_id, a.started_at >= since, a.result.in_(PERSON))
            .group_by(a.result)
        ).all()
    )
    abandoned = rows.get(m.CallState.ABANDONED, 0)
    return abandoned, sum(rows.values())


def learning_history(
    s: Session, campaign_id: int, since: dt.datetime, limit: int = 3000
) -> list[HistoryCall]:
    """The campaign's last ``limit`` finished dialer calls started since ``since``, oldest
    first, with the timings the pacer learns from (every node's: they dial the same list)."""
    call, leg = m.Call, m.CallLeg
    rows = s.execute(
        select(
            leg.started_at,
            leg.answered_at,
            call.answered_at,
            call.ended_at,
            call.state,
            call.end_reason,
        )
        .join(leg, (leg.call_id == call.id) & (leg.role == m.LegRole.CONTACT))
        .where(
            call.campaign_id == campaign_id,
            call.direction == m.Direction.OUTBOUND,
            call.kind.in_(DIALER_KINDS),
            call.ended_at.is_not(None),
            call.started_at >= since,  # ix_calls_started, newest first
        )
        .order_by(call.started_at.desc(), call.id.desc())
        .limit(limit)
    ).all()
    return [
        HistoryCall(dialed, answered, connected, ended, state, reason or "")
        for dialed, answered, connected, ended, state, reason in reversed(rows)
        if ended is not None  # the query asks for ended calls only
    ]


# ------------------------------------------------------------------ recovery


def recover(
    s: Session,
    node: str,
    now: dt.datetime,
    rules_for: Callable[[int], core.CampaignRules | None],
    keep_calls: Iterable[int] = (),
) -> dict[str, int]:
    """After a restart: dialer calls of this node that were still going on are over.

    A call that reached an agent counts as reached (final); one that was dialing counts
    as a failed attempt (retried later, the attempt counts); a contact left ``dialing``
    with no dial made (preview: the agent was still being rung) is released.
    """
    keep = set(keep_calls)
    stats = {"reached": 0, "failed": 0, "released": 0}
    calls = s.scalars(
        select(m.Call).where(
            m.Call.direction == m.Direction.OUTBOUND,
            m.Call.kind.in_(DIALER_KINDS),
            m.Call.node == node,
            m.Call.ended_at.is_(None),
        )
    ).all()
    kept_contacts = {call.contact_id for call in calls if call.id in keep}
    for call in calls:
        if call.id in keep:
            continue
        attempt = _open_attempt(s, call.id)
        reached = call.state == m.CallState.CONNECTED
        state = m.CallState.ENDED if reached else m.CallState.FAILED
        call_finished(s, call.id, state, "lost_during_restart", now)
        rules = rules_for(call.campaign_id) if call.campaign_id else None
        contact = s.get(m.Contact, call.contact_id) if call.contact_id else None
        if contact is None or rules is None or contact.status != m.ContactStatus.DIALING:
            continue
        if attempt is None:
            write_state(contact, core.release(contact_state(s, contact), now))
            stats["released"] += 1
        else:
            apply_outcome(s, contact.id, Outcome.FINAL if reached else Outcome.FAILED, rules, now)
            stats["reached" if reached else "failed"] += 1
    for contact in s.scalars(
        select(m.Contact).where(
            m.Contact.status == m.ContactStatus.DIALING, m.Contact.claimed_by == node
        )
    ):
        if contact.id in kept_contacts:
            continue
        write_state(contact, core.release(contact_state(s, contact), now))
        stats["released"] += 1
    return stats
