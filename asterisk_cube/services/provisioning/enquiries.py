"""Enquiry categories and topics (F-E)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import ProvisioningError, _enum_value, get_campaign


def add_category(
    s: Session, name: str, multi: bool = False, campaign: str | None = None, position: int = 0
) -> m.EnquiryCategory:
    name = name.strip()
    if not name:
        raise ProvisioningError("category name is empty")
    owner = get_campaign(s, campaign) if campaign else None
    owner_id = owner.id if owner else None
    exists = s.scalar(
        select(m.EnquiryCategory).where(
            m.EnquiryCategory.name == name,
            m.EnquiryCategory.campaign_id.is_(None)
            if owner_id is None
            else m.EnquiryCategory.campaign_id == owner_id,
        )
    )
    if exists:
        raise ProvisioningError(f"category {name!r} already exists")
    category = m.EnquiryCategory(
        name=name, multi_choice=multi, campaign_id=owner_id, position=position
    )
    s.add(category)
    s.flush()
    return category


def get_category(s: Session, name: str, campaign: str | None = None) -> m.EnquiryCategory:
    query = select(m.EnquiryCategory).where(m.EnquiryCategory.name == name)
    if campaign:
        query = query.where(m.EnquiryCategory.campaign_id == get_campaign(s, campaign).id)
    else:
        query = query.where(m.EnquiryCategory.campaign_id.is_(None))
    category = s.scalar(query)
    if category is None:
        raise ProvisioningError(f"no category named {name!r}")
    return category


def add_topics(
    s: Session,
    category: str,
    topics: Iterable[str],
    outcome: str = "none",
    campaign: str | None = None,
) -> list[m.EnquiryTopic]:
    outcome_v = _enum_value(m.TopicOutcome, outcome, "outcome")
    names = [t.strip() for t in topics]
    if not names or any(not t for t in names):
        raise ProvisioningError("topic names must not be empty")
    cat = get_category(s, category, campaign)
    existing = {t.name for t in cat.topics}
    dup = [t for t in names if t in existing] or [t for t in names if names.count(t) > 1]
    if dup:
        raise ProvisioningError(f"topic {dup[0]!r} already exists in {category!r}")
    start = len(cat.topics)
    made = [
        m.EnquiryTopic(name=t, position=start + i, outcome=outcome_v) for i, t in enumerate(names)
    ]
    cat.topics.extend(made)
    s.flush()
    return made


def enquiry_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for cat in s.scalars(
        select(m.EnquiryCategory).order_by(m.EnquiryCategory.position, m.EnquiryCategory.name)
    ):
        campaign = s.get(m.Campaign, cat.campaign_id) if cat.campaign_id else None
        rows.append(
            {
                "category": cat.name,
                "choice": "multi" if cat.multi_choice else "single",
                "campaign": campaign.name if campaign else "",
                "topics": ", ".join(
                    t.name + (f" [{t.outcome.value}]" if t.outcome != m.TopicOutcome.NONE else "")
                    for t in cat.topics
                ),
            }
        )
    return rows
