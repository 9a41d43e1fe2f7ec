"""Campaign contacts for the CLI: the list of a campaign's contacts and one contact by its
number (the adapters ask here instead of querying the database themselves)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import get_campaign


def contact_rows(
    s: Session, campaign: str, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """A campaign's contacts in id order (at most ``limit``), optionally of one status."""
    c = get_campaign(s, campaign)
    q = select(m.Contact).where(m.Contact.campaign_id == c.id).order_by(m.Contact.id).limit(limit)
    if status:
        q = q.where(m.Contact.status == m.ContactStatus(status))
    return [
        {
            "id": ct.id,
            "phone": ct.phone,
            "name": ct.name or "",
            "company": ct.company or "",
            "status": ct.status.value,
            "attempts": ct.attempts,
            "next_attempt": ct.next_attempt_at.isoformat(timespec="minutes")
            if ct.next_attempt_at
            else "",
        }
        for ct in s.scalars(q)
    ]


def contact_with_phone(s: Session, campaign_id: int, phone: str) -> m.Contact | None:
    """The campaign's first contact with this (normalized) number, or None."""
    return s.scalar(
        select(m.Contact)
        .where(m.Contact.campaign_id == campaign_id, m.Contact.phone == phone)
        .order_by(m.Contact.id)
        .limit(1)
    )


def campaign_zones(s: Session) -> dict[str, str]:
    """Every campaign's time zone, by campaign name."""
    return {c.name: c.timezone for c in s.scalars(select(m.Campaign))}
