"""Contacts and the call card's static part for the desk, as a service off the event loop.

Search (an ``ILIKE`` over contacts), attach and create run in a worker thread
(``asyncio.to_thread``) after the distributor's journal is drained (``Journal.drain``,
also off the loop), so a contact the journal has just written is found and the call row
it is attached to exists. The call card's static part (``card_static``) is one short Core
read done once per call (the caller's contacts; the categories and the campaign's name
are kept per campaign until the configuration changes: ``CardConfig``); it stays on the
loop (``Distributor._card_static``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd import contact_scope as scope
from asterisk_cube.acd import contract as c
from asterisk_cube.core.numbers import DEFAULT_REGION, normalize
from asterisk_cube.db import models as m
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import engine_of, transaction

T = TypeVar("T")


def contact_view(s: Session, contact: m.Contact) -> c.ContactView:
    campaign = s.get(m.Campaign, contact.campaign_id) if contact.campaign_id else None
    return _view(contact, campaign.name if campaign else None)


def _view(contact: Any, campaign: str | None) -> c.ContactView:
    """A contact row (ORM object or Core row: the same column names) as the desk shows it."""
    return c.ContactView(
        contact_id=contact.id,
        phone=contact.phone,
        name=contact.name,
        company=contact.company,
        email=contact.email,
        campaign=campaign,
        status=contact.status.value,
        extra=dict(contact.extra or {}),
    )


# Built once (issue #19): with desks open, building these per call cost more than the
# reads themselves; each call binds its values.
_CATEGORY_ORDER = (m.EnquiryCategory.position, m.EnquiryCategory.name)
_GENERAL_CATEGORIES = (
    select(m.EnquiryCategory)
    .where(m.EnquiryCategory.active.is_(True), m.EnquiryCategory.campaign_id.is_(None))
    .order_by(*_CATEGORY_ORDER)
)
_CAMPAIGN_CATEGORIES = (
    select(m.EnquiryCategory)
    .where(
        m.EnquiryCategory.active.is_(True),
        or_(
            m.EnquiryCategory.campaign_id.is_(None),
            m.EnquiryCategory.campaign_id == bindparam("campaign_id"),
        ),
    )
    .order_by(*_CATEGORY_ORDER)
)
_CONTACTS_OF_NUMBER = (
    select(m.Contact).where(m.Contact.phone == bindparam("phone")).order_by(m.Contact.id).limit(10)
)


def categories(s: Session, campaign_id: int | None) -> list[m.EnquiryCategory]:
    """The enquiry categories offered on a call of this campaign (and the general ones)."""
    if campaign_id:
        return list(s.scalars(_CAMPAIGN_CATEGORIES, {"campaign_id": campaign_id}))
    return list(s.scalars(_GENERAL_CATEGORIES))


def card_config(s: Session, campaign_id: int | None) -> tuple[list[c.CategoryView], str | None]:
    """The configured part of a call card: the enquiry categories offered on a call of
    this campaign (with their topics) and the campaign's name."""
    campaign = s.get(m.Campaign, campaign_id) if campaign_id else None
    cats = [
        c.CategoryView(
            category_id=cat.id,
            name=cat.name,
            multi=cat.multi_choice,
            campaign=campaign.name if cat.campaign_id and campaign else None,
            topics=[c.TopicView(t.id, t.name) for t in cat.topics],
        )
        for cat in categories(s, campaign_id)
    ]
    return cats, campaign.name if campaign else None


class CardConfig:
    """:func:`card_config` per campaign, read once until the configuration changes
    (issue #19: with desks open the categories and their topics were read for every call,
    about 6 % of serve's CPU). Categories, topics and campaigns are configuration
    (``db.config_version``): the distributor's reload empties this (``forget``), so a
    change made with the CLI shows on the next call's card."""

    def __init__(self) -> None:
        self._by_campaign: dict[int | None, tuple[list[c.CategoryView], str | None]] = {}

    def get(
        self, sessions: sessionmaker[Session], campaign_id: int | None
    ) -> tuple[list[c.CategoryView], str | None]:
        cached = self._by_campaign.get(campaign_id)
        if cached is None:
            with transaction(sessions) as s:
                cached = self._by_campaign[campaign_id] = card_config(s, campaign_id)
        return cached

    def forget(self) -> None:
        self._by_campaign.clear()


# The caller's contacts and each one's campaign name in one Core statement (issue #19:
# read for every call whose card is shown; the ORM query in a session cost about 4 % of
# serve's CPU with desks open).
_CARD_CONTACTS = (
    select(
        m.Contact.id,
        m.Contact.phone,
        m.Contact.name,
        m.Contact.company,
        m.Contact.email,
        m.Campaign.name.label("campaign"),
        m.Contact.status,
        m.Contact.extra,
    )
    .select_from(m.Contact)
    .outerjoin(m.Campaign, m.Campaign.id == m.Contact.campaign_id)
    .where(m.Contact.phone == bindparam("phone"))
    .order_by(m.Contact.id)
    .limit(10)
)


@functools.lru_cache(maxsize=4096)
def _normalized(caller: str) -> str | None:
    return normalize(caller, DEFAULT_REGION)


def card_static(
    sessions: sessionmaker[Session], caller: str, campaign_id: int | None, config: CardConfig
) -> tuple:
    """The parts of a call card that do not change during the call: the caller's contacts
    (read for each call, one statement on a plain connection: contacts are not
    configuration), the enquiry categories and the campaign's name (``config``: read once
    per campaign until the configuration changes)."""
    number = _normalized(caller)
    contacts = []
    if number:
        with engine_of(sessions).connect() as conn:
            rows = conn.execute(_CARD_CONTACTS, {"phone": number})
            contacts = [_view(row, row.campaign) for row in rows]
    cats, campaign = config.get(sessions, campaign_id)
    return contacts, list(cats), campaign


class Contacts:
    """Search, attach and create contacts for the desk (``Distributor`` validates the
    agent and the call on the loop first)."""

    def __init__(self, sessions: sessionmaker[Session], journal: Journal) -> None:
        self.card_config = CardConfig()
        self.sessions = sessions
        self.journal = journal

    async def _in_thread(self, fn: Callable[[Session], T]) -> T:
        await self.journal.drain()  # what the loop queued before is written (and seen)

        def run() -> T:
            with transaction(self.sessions) as s:
                return fn(s)

        return await asyncio.to_thread(run)

    async def search(
        self, agent_id: int, permitted: frozenset[int], text: str
    ) -> list[c.ContactView]:
        """Contacts by name, company or number among those the agent may see
        (``acd.contact_scope``); ``text`` is already checked (2 characters or more)."""
        number = normalize(text, DEFAULT_REGION) if any(ch.isdigit() for ch in text) else None
        like = scope.like_containing(text)  # literal: q=%% is not "everything"

        def search(s: Session) -> list[c.ContactView]:
            conditions = [
                m.Contact.name.ilike(like, escape=scope.LIKE_ESCAPE),
                m.Contact.company.ilike(like, escape=scope.LIKE_ESCAPE),
            ]
            if number:
                digits = scope.like_containing(number.lstrip("+"))
                conditions.append(m.Contact.phone.like(digits, escape=scope.LIKE_ESCAPE))
            mine = scope.visible_contacts(s, agent_id, permitted)
            rows = s.scalars(
                select(m.Contact).where(or_(*conditions), mine).order_by(m.Contact.id).limit(25)
            )
            return [contact_view(s, ct) for ct in rows]

        return await self._in_thread(search)

    async def attach(
        self, agent_id: int, permitted: frozenset[int], call_id: int, caller: str, contact_id: int
    ) -> None:
        """Attach one the agent may search for, or one of the caller's own (the screen pop),
        to the call's row; raises ``Refused`` (nothing written) otherwise."""

        def attach(s: Session) -> None:
            contact = s.get(m.Contact, contact_id)
            if contact is None or not (
                contact.phone == normalize(caller, DEFAULT_REGION)
                or s.scalar(
                    select(m.Contact.id).where(
                        m.Contact.id == contact_id,
                        scope.visible_contacts(s, agent_id, permitted),
                    )
                )
            ):
                raise c.Refused(c.NOT_FOUND, f"no contact {contact_id}")
            s.get_one(m.Call, call_id).contact_id = contact_id

        await self._in_thread(attach)

    async def create(
        self,
        agent_id: int,
        call_id: int,
        campaign_id: int | None,
        number: str,
        name: str,
        company: str,
        email: str,
    ) -> c.ContactView:
        """A new contact (checked by the caller), attached to the call's row."""

        def create(s: Session) -> c.ContactView:
            contact = m.Contact(
                campaign_id=campaign_id,
                phone=number,
                name=name.strip(),
                company=company.strip() or None,
                email=email.strip() or None,
                status=m.ContactStatus.DONE,
                last_agent_id=agent_id,
            )
            s.add(contact)
            s.flush()
            s.get_one(m.Call, call_id).contact_id = contact.id
            return contact_view(s, contact)

        return await self._in_thread(create)
