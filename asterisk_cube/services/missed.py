"""Missed calls (F-I7) for the CLI: who called which line, when, and what became of it
(processed, called back and how that call ended)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import ProvisioningError, get_line

STATES = ("open", "processed", "all")


def parse_since(text: str, zone: str) -> dt.datetime:
    """``YYYY-MM-DD`` (midnight) or ``YYYY-MM-DD HH:MM`` in ``zone``, or an ISO time with
    an offset; as an aware datetime. One-line error naming ``--since``."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ProvisioningError(
            f"--since: not a date or time: {text!r} (e.g. 2026-11-23 or 2026-11-23 08:00)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value


def missed_calls(
    s: Session,
    *,
    lines: tuple[str, ...] = (),
    since: dt.datetime | None = None,
    state: str = "open",
    zone: str = "UTC",
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Missed calls, oldest first, with times in ``zone``. ``lines``: DIDs (unknown ones
    are refused); ``state``: open (not processed), processed, or all."""
    if state not in STATES:
        raise ProvisioningError(f"--state: one of {', '.join(STATES)}")
    line_ids = [get_line(s, did).id for did in lines]
    tz = ZoneInfo(zone)
    callback = aliased(m.Call)
    query = (
        select(m.MissedCall, m.Line.did, m.Line.name, m.Agent.username, callback)
        .outerjoin(m.Line, m.Line.id == m.MissedCall.line_id)
        .outerjoin(m.Agent, m.Agent.id == m.MissedCall.processed_by)
        .outerjoin(callback, callback.id == m.MissedCall.callback_call_id)
        .order_by(m.MissedCall.missed_at, m.MissedCall.id)
        .limit(limit)
    )
    if line_ids:
        query = query.where(m.MissedCall.line_id.in_(line_ids))
    if since is not None:
        query = query.where(m.MissedCall.missed_at >= since.astimezone(dt.UTC))
    if state == "open":
        query = query.where(m.MissedCall.processed_at.is_(None))
    elif state == "processed":
        query = query.where(m.MissedCall.processed_at.is_not(None))

    def local(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:  # SQLite hands back naive UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    return [
        {
            "id": missed.id,
            "missed_at": local(missed.missed_at),
            "line": did or "",
            "line_name": name or "",
            "caller": missed.caller_number,
            "processed": missed.processed_at is not None,
            "processed_at": local(missed.processed_at),
            "processed_by": username or "",
            "callback_call": missed.callback_call_id,
            "callback_state": call.state.value if call is not None else "",
            "callback_talk_s": round((call.ended_at - call.answered_at).total_seconds())
            if call is not None and call.answered_at and call.ended_at
            else None,
        }
        for missed, did, name, username, call in s.execute(query)
    ]
