"""Recorded calls (F-M4): one row per call recording in the period, with the call it
belongs to, so a supervisor finds the recording from the call's row and plays it
(``recording`` is the playback address, ``/recordings/{id}/file``, while the file exists).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import Period, Report, agent_ids, campaign_ids, check_group_by, line_ids

GROUP_KEYS = ("call",)
COLUMNS = [
    "call",
    "started",
    "direction",
    "line",
    "campaign",
    "agent",
    "caller",
    "talk_seconds",
    "recording_id",
    "recording_state",
    "duration_seconds",
    "recording",
]


def recordings(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("call",),
    *,
    lines: Iterable[str] | None = None,
    campaigns: Iterable[str] | None = None,
    agents: Iterable[str] | None = None,
) -> Report:
    check_group_by(group_by, GROUP_KEYS)
    r, c = m.Recording, m.Call
    q = (
        select(r, c, m.Line.did, m.Campaign.name, m.Agent.username)
        .join(c, c.id == r.call_id, isouter=True)
        .join(m.Line, m.Line.id == c.line_id, isouter=True)
        .join(m.Campaign, m.Campaign.id == c.campaign_id, isouter=True)
        .join(m.Agent, m.Agent.id == c.agent_id, isouter=True)
        .where(r.started_at >= period.start, r.started_at < period.end)
        .order_by(r.started_at, r.id)
    )
    if lines:
        q = q.where(c.line_id.in_(line_ids(session, lines)))
    if campaigns:
        q = q.where(c.campaign_id.in_(campaign_ids(session, campaigns)))
    if agents:
        q = q.where(c.agent_id.in_(agent_ids(session, agents)))
    rows = []
    tz = period.tz
    for rec, call, did, campaign, username in session.execute(q):
        talk = None
        if call is not None and call.answered_at and call.ended_at:
            talk = round((call.ended_at - call.answered_at).total_seconds(), 1)
        rows.append(
            {
                "call": rec.call_id,
                "started": rec.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                "direction": call.direction.value if call is not None else None,
                "line": did,
                "campaign": campaign,
                "agent": username,
                "caller": call.caller_number if call is not None else None,
                "talk_seconds": talk,
                "recording_id": rec.id,
                "recording_state": rec.state,
                "duration_seconds": rec.duration_seconds,
                "recording": f"/recordings/{rec.id}/file" if rec.state == "done" else None,
            }
        )
    return Report(
        "Recorded calls",
        list(COLUMNS),
        rows,
        period.meta(),
    )
