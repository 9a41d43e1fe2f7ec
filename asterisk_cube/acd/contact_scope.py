"""Which contacts an agent may search and open on the desk (issue #12 item 8).

The rule (docs/desktop.md): an agent sees the contacts

* of the outbound campaigns it works for, by the dialer's rule (campaigns without a
  skill and those whose skill it holds: ``agent_campaign_ids``, here so that the dialer
  and the web import it from acd/, which imports nothing of the dialer);
* of the inbound campaigns (hotlines) of the lines it is permitted to serve;
* that belong to no campaign (made on service calls: the shared service directory).

The screen pop is not limited by this: the contacts with the caller's own number are
shown on the card of the call the agent is on (F-I6), and can be opened from there.

Search text is matched literally: ``%``, ``_`` and ``\\`` are escaped, so ``q=%%`` finds
a name with two percent signs, not every contact.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

LIKE_ESCAPE = "\\"


def like_containing(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, literally (use with ``escape="\\\\"``)."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def agent_campaign_ids(s: Session, agent_id: int) -> set[int]:
    """The outbound campaigns an agent works for, by the dialer's rule: those without a
    skill and those whose skill it holds."""
    skills = select(m.AgentSkill.skill_id).where(m.AgentSkill.agent_id == agent_id)
    return set(
        s.scalars(
            select(m.Campaign.id).where(
                m.Campaign.direction == m.Direction.OUTBOUND,
                or_(m.Campaign.skill_id.is_(None), m.Campaign.skill_id.in_(skills)),
            )
        )
    )


def visible_campaign_ids(s: Session, agent_id: int, line_ids: Collection[int]) -> set[int]:
    """The campaigns whose contacts ``agent_id`` may see (see the module docstring)."""
    hotlines: set[int] = set()
    if line_ids:
        hotlines = set(
            s.scalars(
                select(m.Line.campaign_id).where(
                    m.Line.id.in_(list(line_ids)), m.Line.campaign_id.is_not(None)
                )
            )
        )
    return agent_campaign_ids(s, agent_id) | hotlines


def visible_contacts(s: Session, agent_id: int, line_ids: Collection[int]) -> ColumnElement[bool]:
    """A WHERE clause on ``contacts``: the ones ``agent_id`` may see."""
    campaigns = visible_campaign_ids(s, agent_id, line_ids)
    return or_(m.Contact.campaign_id.is_(None), m.Contact.campaign_id.in_(campaigns))
