"""Scheduled callbacks as the agent desktop asks for them (F-E6): the form's facts, a
callback scheduled, the agent's scheduled-calls view, a cancel. ``web/callbacks.py`` only
translates HTTP; the rules live here. This is the desk's service layer for callbacks; it is
in dialer/ and not services/ because it builds on the dialer's callbacks and acd's contact
scope, and the packages layer services < acd < dialer (tests/unit/test_import_cycles.py).

Who may do what is decided from the agent, never from the request: the contact must be a
contact of an outbound campaign the agent works for
(:func:`~asterisk_cube.acd.contact_scope.agent_campaign_ids`); the agent sees and cancels
its own callbacks and those for all agents of its campaigns, any other id is "not found".
Writing reuses :mod:`asterisk_cube.dialer.callbacks`. Every function takes the caller's
session (one transaction: validate, then write) and raises :class:`CallbackRefused`, whose
``code`` the web turns into a message in the agent's language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.acd.contact_scope import agent_campaign_ids
from asterisk_cube.acd.contract import ILLEGAL_STATE, INVALID, NOT_FOUND, NOT_PERMITTED
from asterisk_cube.db import models as m
from asterisk_cube.dialer import callbacks as cb
from asterisk_cube.dialer.claims import PENDING_CALLBACK

MAX_AHEAD = dt.timedelta(days=366)
DONE_SHOWN = dt.timedelta(days=7)  # delivered / cancelled ones stay in the view this long
MAX_DONE = 20
DONE_STATES = ("delivered", "cancelled")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class CallbackRefused(Exception):
    """Refused: ``reason`` is the desk's reason key (``acd.contract``), ``code`` names the
    refusal (the web's message table), ``values`` fill its message, ``field`` the input."""

    def __init__(
        self,
        reason: str,
        code: str,
        field: str | None = None,
        *,
        detail: str = "",
        **values: Any,
    ) -> None:
        super().__init__(detail or code)
        self.reason, self.code, self.field, self.values = reason, code, field, values
        self.detail = detail


@dataclass(frozen=True)
class Asked:
    """A callback as the agent asked for it (the body, validated)."""

    when: dt.datetime
    comment: str
    for_me: bool
    contact_id: int | None  # the contact the desk shows, if it says


def due_in_zone(when: dt.datetime, zone: str, now: dt.datetime) -> dt.datetime:
    """``when`` (local time of ``zone`` unless it has an offset) in UTC, checked: a local
    time the clocks skip, a time in the past or more than a year ahead is refused."""
    tz = ZoneInfo(zone)
    if when.tzinfo is None:
        aware = when.replace(tzinfo=tz)
        back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
        if back != when:  # e.g. 02:30 when the clocks go from 02:00 to 03:00
            raise CallbackRefused(
                INVALID,
                "skipped_time",
                "due_at",
                time=when.strftime("%Y-%m-%d %H:%M"),
                zone=zone,
            )
        when = aware
    due = when.astimezone(dt.UTC)
    if due <= now:
        raise CallbackRefused(INVALID, "in_the_past", "due_at")
    if due > now + MAX_AHEAD:
        raise CallbackRefused(INVALID, "too_far_ahead", "due_at")
    return due


def local_text(value: dt.datetime | None, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if value else ""


def whose(agent_id: int | None, me: int) -> str:
    """A callback's ``for`` as the agent ``me`` sees it: me | all | other."""
    return "all" if agent_id is None else "me" if agent_id == me else "other"


def outbound_contact(s: Session, agent_id: int, contact_id: int) -> tuple[m.Contact, m.Campaign]:
    """The contact and its campaign, if an outbound campaign the agent works for."""
    contact = s.get(m.Contact, contact_id)
    campaign = s.get(m.Campaign, contact.campaign_id) if contact and contact.campaign_id else None
    if contact is None or campaign is None or campaign.direction != m.Direction.OUTBOUND:
        raise CallbackRefused(ILLEGAL_STATE, "not_outbound")
    if campaign.id not in agent_campaign_ids(s, agent_id):
        raise CallbackRefused(NOT_PERMITTED, "not_your_campaign", campaign=campaign.name)
    return contact, campaign


def callback_facts(s: Session, agent_id: int, contact_id: int, now: dt.datetime) -> dict[str, Any]:
    """What the desk's callback form shows: the contact, its campaign's zone and local time
    now, the pending callback if any (``dialing``: the contact is being called)."""
    contact, campaign = outbound_contact(s, agent_id, contact_id)
    pending = s.scalar(
        select(m.ScheduledCallback)
        .where(
            m.ScheduledCallback.contact_id == contact.id,
            m.ScheduledCallback.status.in_(PENDING_CALLBACK),
        )
        .order_by(m.ScheduledCallback.id.desc())
        .limit(1)
    )
    zone = campaign.timezone
    return {
        "contact_id": contact.id,
        "name": contact.name or "",
        "phone": contact.phone,
        "campaign": campaign.name,
        "timezone": zone,
        "now_local": now.astimezone(ZoneInfo(zone)).strftime(LOCAL_FORMAT),
        "reservation_minutes": campaign.callback_reservation_minutes,
        "dialing": contact.status == m.ContactStatus.DIALING,
        "pending": None
        if pending is None
        else {
            "id": pending.id,
            "due_local": local_text(pending.due_at, zone),
            "for": whose(pending.agent_id, agent_id),
            "comment": pending.comment or "",
        },
    }


def schedule_callback(
    s: Session,
    agent_id: int,
    contact_id: int,
    ask: Asked,
    now: dt.datetime,
    *,
    dialer_call: bool,
    can_defer: bool,
) -> tuple[dict[str, Any], bool]:
    """Check everything, then write the callback, unless the dialer still holds the call
    (``deferred``: the due time is only checked here; ``can_defer``: there is a dialer to
    hand it to)."""
    contact, campaign = outbound_contact(s, agent_id, contact_id)
    due = due_in_zone(ask.when, campaign.timezone, now)
    deferred = dialer_call and contact.status == m.ContactStatus.DIALING
    if deferred and not can_defer:
        raise CallbackRefused(ILLEGAL_STATE, "after_the_call")
    out: dict[str, Any] = {
        "id": None,
        "due_at": due,
        "due_local": local_text(due, campaign.timezone),
        "timezone": campaign.timezone,
        "campaign": campaign.name,
        "contact_id": contact.id,
        "for": "me" if ask.for_me else "all",
        "comment": ask.comment,
    }
    if not deferred:
        try:
            row = cb.schedule(
                s,
                contact.id,
                due,
                agent_id=agent_id if ask.for_me else None,
                comment=ask.comment,
                created_by=agent_id,
                now=now,
            )
        except cb.CallbackError as exc:
            raise CallbackRefused(ILLEGAL_STATE, "being_called", detail=str(exc)) from None
        out["id"] = row.id
    return out, deferred


def scheduled_view(s: Session, agent_id: int, now: dt.datetime) -> dict[str, Any]:
    """The agent's scheduled calls: pending ones soonest first, then the last delivered /
    cancelled ones; and how many campaigns the agent works for."""
    mine = agent_campaign_ids(s, agent_id)
    rows = cb.scheduled_calls(
        s,
        agent_id=agent_id,
        campaign_ids=mine,
        include_done=True,
        done_since=now - DONE_SHOWN,
        now=now,
    )
    pending = [r for r in rows if r["state"] not in DONE_STATES]
    done = [r for r in reversed(rows) if r["state"] in DONE_STATES][:MAX_DONE]
    return {"callbacks": [_row(r, agent_id) for r in pending + done], "campaigns": len(mine)}


def cancel_callback(s: Session, agent_id: int, callback_id: int, now: dt.datetime) -> None:
    """Cancel one of the agent's callbacks (its own, or one for all of its campaigns)."""
    row = s.get(m.ScheduledCallback, callback_id)
    mine = row is not None and (
        row.agent_id == agent_id
        or (row.agent_id is None and row.campaign_id in agent_campaign_ids(s, agent_id))
    )
    if not mine:
        raise CallbackRefused(NOT_FOUND, "not_your_callback", id=callback_id)
    try:
        cb.cancel(s, callback_id, now=now)
    except cb.CallbackError as exc:
        raise CallbackRefused(ILLEGAL_STATE, "not_cancellable", detail=str(exc)) from None


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(row: dict[str, Any], me: int) -> dict[str, Any]:
    zone = row["timezone"]
    return {
        "id": row["id"],
        "state": row["state"],
        "due_at": iso(row["due_at"]),
        "due_local": local_text(row["due_at"], zone),
        "timezone": zone,
        "campaign": row["campaign"],
        "contact_id": row["contact_id"],
        "phone": row["phone"],
        "name": row["name"],
        "for": whose(row["agent_id"], me),
        "comment": row["comment"],
        "reserved_until": iso(row["reserved_until"]),
        "delivered_at": iso(row["delivered_at"]),
        "cancellable": row["state"] not in DONE_STATES,
    }
