"""Lines (DIDs): add, update, remove, list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    ProvisioningError,
    _same_line,
    check_did,
    check_positive,
    get_campaign,
    get_client,
    get_line,
)


def add_line(
    s: Session,
    did: str,
    name: str | None = None,
    priority: int = 0,
    campaign: str | None = None,
    client: str | None = None,
    offer_timeout: int = 20,
    announcement: str | None = None,
) -> m.Line:
    did = check_did(did)
    if campaign and client:
        raise ProvisioningError("a line belongs to a campaign or to a client, not both")
    check_positive(offer_timeout, "offer timeout", 5)
    owner_campaign = get_campaign(s, campaign) if campaign else None
    if owner_campaign and owner_campaign.direction != m.Direction.INBOUND:
        raise ProvisioningError(
            f"campaign {campaign!r} is outbound; a hotline needs an inbound campaign"
        )
    owner_client = get_client(s, client) if client else None
    owner = owner_client or owner_campaign
    existing = _same_line(s, did, owner.phone_region if owner else None)
    if existing is not None:
        same = "" if existing.did == did else f" as {existing.did} (the same number)"
        raise ProvisioningError(f"line {did} already exists{same}")
    line = m.Line(
        did=did,
        name=name or did,
        priority=priority,
        campaign=owner_campaign,
        client=owner_client,
        offer_timeout_seconds=offer_timeout,
        announcement=announcement,
    )
    s.add(line)
    s.flush()
    return line


def update_line(s: Session, did: str, **changes: Any) -> m.Line:
    line = get_line(s, did)
    if changes.get("offer_timeout") is not None:
        line.offer_timeout_seconds = check_positive(changes["offer_timeout"], "offer timeout", 5)
    if changes.get("priority") is not None:
        line.priority = int(changes["priority"])
    if changes.get("name"):
        line.name = changes["name"]
    if changes.get("enabled") is not None:
        line.enabled = bool(changes["enabled"])
    if changes.get("announcement") is not None:
        line.announcement = changes["announcement"] or None
    s.flush()
    return line


def remove_line(s: Session, did: str) -> None:
    s.delete(get_line(s, did))
    s.flush()


def line_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for line in s.scalars(select(m.Line).order_by(m.Line.priority.desc(), m.Line.did)):
        if line.client:
            kind, owner = "answering", line.client.name
        elif line.campaign:
            kind, owner = "hotline", line.campaign.name
        else:
            kind, owner = "service", ""
        agents = s.scalar(select(func.count()).where(m.AgentLine.line_id == line.id))
        rows.append(
            {
                "did": line.did,
                "name": line.name,
                "priority": line.priority,
                "kind": kind,
                "owner": owner,
                "agents": agents,
                "offer_timeout": line.offer_timeout_seconds,
                "enabled": line.enabled,
            }
        )
    return rows
