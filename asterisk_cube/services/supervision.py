"""Supervisor actions and campaign figures for the live panel (F-M1).

Every action validates its input, changes the database and writes an ``audit_log`` row
naming who did it (``actor`` username and ``actor_id``), in the caller's transaction
(``db.session.transaction``). The web panel then tells the live distributor
(``Distributor.lines_changed``, ``choose_lines``, ``pause``, ``ready``).

:func:`campaign_pace` reads what the panel shows per outbound campaign: lines dialing
now, calls connected now, today's attempts, connects, abandons and abandon rate against
the campaign's cap, and contacts left to dial. "Today" starts at midnight in the
campaign's own time zone; the rate is abandons / calls answered by a person (connected,
ended or abandoned), the same definition the dialer's pacer and the outbound report use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services import provisioning as p

PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
PERSON = (m.CallState.CONNECTED, m.CallState.ENDED, m.CallState.ABANDONED)
REACHED = (m.CallState.CONNECTED, m.CallState.ENDED)
LEFT_TO_DIAL = (m.ContactStatus.NEW, m.ContactStatus.NOT_ANSWERED, m.ContactStatus.CALLBACK)
CAMPAIGN_STATUSES = tuple(s.value for s in m.CampaignStatus)


class SupervisionError(ValueError):
    """Refused input: ``field`` names the offending input, ``reason`` is a stable key."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message


def audit(
    s: Session,
    actor: str,
    actor_id: int | None,
    action: str,
    target: str,
    **details: Any,
) -> m.AuditLog:
    row = m.AuditLog(
        actor=actor, actor_id=actor_id, action=action, target=target[:120], details=details
    )
    s.add(row)
    return row


def set_line_priority(
    s: Session, line_id: int, priority: int, *, actor: str, actor_id: int | None
) -> tuple[m.Line, int]:
    """Change a line's priority (higher is served first). Returns (line, old priority)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise SupervisionError("invalid", "priority", "priority must be a whole number")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise SupervisionError(
            "invalid", "priority", f"priority must be {PRIORITY_MIN}..{PRIORITY_MAX}"
        )
    line = s.get(m.Line, line_id)
    if line is None:
        raise SupervisionError("not_found", "line_id", f"no line {line_id}")
    old = line.priority
    line.priority = priority
    audit(s, actor, actor_id, "line_priority", line.did, line_id=line.id, old=old, new=priority)
    s.flush()
    return line, old


def set_campaign_status(
    s: Session, campaign_id: int, status: str, *, actor: str, actor_id: int | None
) -> tuple[m.Campaign, str]:
    """Start (running), pause or stop a campaign. Returns (campaign, old status)."""
    if status not in CAMPAIGN_STATUSES:
        raise SupervisionError(
            "invalid", "status", f"status must be one of {', '.join(CAMPAIGN_STATUSES)}"
        )
    campaign = s.get(m.Campaign, campaign_id)
    if campaign is None:
        raise SupervisionError("not_found", "campaign_id", f"no campaign {campaign_id}")
    old = campaign.status.value
    before = s.scalar(select(func.max(m.AuditLog.id))) or 0
    p.set_campaign_status(s, campaign.name, status, actor=actor)
    # provisioning writes the audit row with the username only: add who it was
    for row in s.scalars(
        select(m.AuditLog).where(m.AuditLog.id > before, m.AuditLog.actor == actor)
    ):
        row.actor_id = actor_id
    return campaign, old


def pause_reasons(s: Session) -> list[tuple[str, str]]:
    """The pause reasons an agent can be given (not the system's own), as (code, label)
    by label."""
    rows = s.scalars(
        select(m.PauseReason).where(m.PauseReason.system.is_(False)).order_by(m.PauseReason.label)
    ).all()
    return [(r.code, r.label) for r in rows]


def agent_label(s: Session, agent_id: int) -> str:
    agent = s.get(m.Agent, agent_id)
    if agent is None:
        raise SupervisionError("not_found", "agent_id", f"no agent {agent_id}")
    return agent.username


def _midnight(now: dt.datetime, timezone: str) -> dt.datetime:
    try:
        zone = ZoneInfo(timezone)
    except Exception:
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    start = dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC)


def campaign_pace(s: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per outbound campaign (see the module docstring), by name."""
    now = now or dt.datetime.now(dt.UTC)
    campaigns = list(
        s.scalars(
            select(m.Campaign)
            .where(m.Campaign.direction == m.Direction.OUTBOUND)
            .order_by(m.Campaign.name)
        )
    )
    if not campaigns:
        return []
    ids = [c.id for c in campaigns]
    live: dict[tuple[int | None, m.CallState], int] = {
        (cid, state): n
        for cid, state, n in s.execute(
            select(m.Call.campaign_id, m.Call.state, func.count())
            .where(
                m.Call.campaign_id.in_(ids),
                m.Call.direction == m.Direction.OUTBOUND,
                m.Call.state.in_((m.CallState.DIALING, m.CallState.CONNECTED)),
            )
            .group_by(m.Call.campaign_id, m.Call.state)
        )
    }
    left = dict(
        s.execute(
            select(m.Contact.campaign_id, func.count())
            .where(m.Contact.campaign_id.in_(ids), m.Contact.status.in_(LEFT_TO_DIAL))
            .group_by(m.Contact.campaign_id)
        ).all()
    )
    out = []
    for c in campaigns:
        since = _midnight(now, c.timezone)
        a = m.ContactAttempt
        results: dict[m.CallState | None, int] = dict(
            s.execute(
                select(a.result, func.count())
                .where(a.campaign_id == c.id, a.started_at >= since)
                .group_by(a.result)
            ).all()
        )
        attempts = sum(results.values())
        person = sum(results.get(st, 0) for st in PERSON)
        abandoned = results.get(m.CallState.ABANDONED, 0)
        rate = abandoned / person if person else 0.0
        out.append(
            {
                "campaign_id": c.id,
                "name": c.name,
                "mode": c.mode.value if c.mode else "",
                "status": c.status.value,
                "dialing": live.get((c.id, m.CallState.DIALING), 0),
                "connected": live.get((c.id, m.CallState.CONNECTED), 0),
                "attempts": attempts,
                "connects": sum(results.get(st, 0) for st in REACHED),
                "answered": person,
                "abandoned": abandoned,
                "abandon_rate": round(rate, 4),
                "abandon_cap": c.abandon_cap,
                "over_cap": person > 0 and rate > c.abandon_cap,
                "left": left.get(c.id, 0),
                "since": since.isoformat(),
            }
        )
    return out
