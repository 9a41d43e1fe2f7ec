"""Scheduled callbacks (F-E6): schedule, list (the scheduled-calls view), cancel.

A callback is a ``scheduled_callbacks`` row plus its contact in state ``callback``
(:func:`asterisk_cube.dialer.records.apply_outcome` keeps the two in step). From its due
time the dialer delivers it like a preview call, to its agent while the campaign's
reservation lasts, then to anyone (see :mod:`.claims`).

The scheduled-calls view of an agent shows its own callbacks and those for all agents of
the campaigns it works for (:func:`asterisk_cube.acd.contact_scope.agent_campaign_ids`),
soonest first, with ``state``:
``scheduled`` (not due yet), ``reserved`` (due, waiting for its agent), ``due`` (for anyone),
``delivered``, ``cancelled``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m

from . import records
from .campaigns import rules_of
from .claims import PENDING_CALLBACK, pending_callback


class CallbackError(ValueError):
    """A callback that cannot be scheduled or changed (one-line message for users)."""


def schedule(
    s: Session,
    contact_id: int,
    due_at: dt.datetime,
    *,
    agent_id: int | None = None,
    comment: str = "",
    created_by: int | None = None,
    now: dt.datetime | None = None,
) -> m.ScheduledCallback:
    """Schedule a callback of a campaign contact (replacing a pending one)."""
    if due_at.tzinfo is None:
        raise CallbackError("give the time with its zone")
    if len(comment) > 4000:
        raise CallbackError("comment: at most 4000 characters")
    contact = s.get(m.Contact, contact_id)
    campaign = s.get(m.Campaign, contact.campaign_id) if contact and contact.campaign_id else None
    if contact is None or campaign is None or campaign.direction != m.Direction.OUTBOUND:
        raise CallbackError(f"contact {contact_id} is not in an outbound campaign")
    if contact.status == m.ContactStatus.DIALING:
        raise CallbackError(f"contact {contact_id} is being dialed right now")
    if agent_id is not None and s.get(m.Agent, agent_id) is None:
        raise CallbackError(f"no agent {agent_id}")
    now = now or dt.datetime.now(dt.UTC)
    records.apply_outcome(
        s,
        contact_id,
        Outcome.CALLBACK,
        rules_of(campaign),
        now,
        core.Callback(due_at, agent_id, comment),
        created_by,
    )
    row = pending_callback(s, contact_id)
    assert row is not None  # apply_outcome made it
    return row


def cancel(s: Session, callback_id: int, now: dt.datetime | None = None) -> m.ScheduledCallback:
    """Cancel a pending callback; its contact goes back to be dialed as a retry."""
    row = s.get(m.ScheduledCallback, callback_id)
    if row is None or row.status not in PENDING_CALLBACK:
        raise CallbackError(f"no pending callback {callback_id}")
    contact = s.get(m.Contact, row.contact_id)
    if contact is not None and contact.status == m.ContactStatus.DIALING:
        raise CallbackError(f"callback {callback_id} is being delivered right now")
    row.status = m.CallbackStatus.CANCELLED
    if contact is not None and contact.status == m.ContactStatus.CALLBACK:
        contact.status = m.ContactStatus.NOT_ANSWERED
        contact.next_attempt_at = now or dt.datetime.now(dt.UTC)
    return row


def scheduled_calls(
    s: Session,
    *,
    agent_id: int | None = None,
    campaign_id: int | None = None,
    campaign_ids: Collection[int] | None = None,
    include_done: bool = False,
    done_since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The scheduled-calls view: one row per callback, soonest first.

    ``agent_id``: that agent's own callbacks and those for all agents (only of
    ``campaign_ids`` when given: an agent's view passes
    :func:`asterisk_cube.acd.contact_scope.agent_campaign_ids`).
    ``include_done`` adds delivered and cancelled ones (due since ``done_since``)."""
    now = now or dt.datetime.now(dt.UTC)
    cb, contact, campaign = m.ScheduledCallback, m.Contact, m.Campaign
    query = (
        select(cb, contact, campaign)
        .join(contact, contact.id == cb.contact_id)
        .join(campaign, campaign.id == cb.campaign_id)
        .order_by(cb.due_at, cb.id)
    )
    if not include_done:
        query = query.where(cb.status.in_(PENDING_CALLBACK))
    elif done_since is not None:
        query = query.where(or_(cb.status.in_(PENDING_CALLBACK), cb.due_at >= done_since))
    if campaign_id is not None:
        query = query.where(cb.campaign_id == campaign_id)
    if agent_id is not None:
        for_all: ColumnElement[bool] = cb.agent_id.is_(None)
        if campaign_ids is not None:
            for_all = and_(for_all, cb.campaign_id.in_(list(campaign_ids)))
        query = query.where(or_(cb.agent_id == agent_id, for_all))
    elif campaign_ids is not None:
        query = query.where(cb.campaign_id.in_(list(campaign_ids)))
    agents = {a.id: a.username for a in s.scalars(select(m.Agent))}
    rows = []
    for row, person, camp in s.execute(query):
        reserved_until = (
            row.due_at + dt.timedelta(minutes=camp.callback_reservation_minutes)
            if row.agent_id is not None
            else None
        )
        if row.status == m.CallbackStatus.DELIVERED:
            state = "delivered"
        elif row.status == m.CallbackStatus.CANCELLED:
            state = "cancelled"
        elif row.due_at > now:
            state = "scheduled"
        elif reserved_until is not None and now < reserved_until:
            state = "reserved"
        else:
            state = "due"
        rows.append(
            {
                "id": row.id,
                "due_at": row.due_at,
                "state": state,
                "campaign": camp.name,
                "campaign_id": camp.id,
                "timezone": camp.timezone,
                "agent_id": row.agent_id,
                "contact_id": person.id,
                "phone": person.phone,
                "name": person.name or "",
                "for": agents.get(row.agent_id, "?") if row.agent_id else "all agents",
                "reserved_until": reserved_until,
                "comment": row.comment or "",
                "delivered_at": row.delivered_at,
            }
        )
    return rows
