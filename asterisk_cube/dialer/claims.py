"""Claiming the next contacts to dial, atomically, in the database (F-D1, F-E5, F-E6).

The rules are the pure core's (:mod:`asterisk_cube.core.contacts`), written here as one
SQL statement so that they hold even with several ``serve`` processes on one database:

- never outside the calling window (checked with the core before the statement runs);
- never beyond ``max_attempts``, never before ``next_attempt_at``, never a contact that is
  being dialed or closed: only rows in a claimable state are touched, and the claim itself
  moves them to ``dialing`` (and counts the attempt) in the same statement;
- order: due scheduled callbacks (the caller's own reserved ones first, then oldest due)
  before fresh contacts (list order) before retries (longest overdue first);
- a callback reserved for a logged-in agent goes only to that agent until its reservation
  (the campaign's N minutes from the due time) runs out; then, or if that agent is logged
  out, to anyone.

Never twice at once:

- PostgreSQL: ``UPDATE contacts ... WHERE id IN (SELECT id ... ORDER BY ... LIMIT n FOR
  UPDATE SKIP LOCKED)``: a second process skips the rows the first one holds, and a row
  the first one already claimed no longer matches (PostgreSQL re-checks the condition on
  the new row version);
- SQLite: the same single ``UPDATE`` statement; SQLite runs one writer at a time and the
  statement reads the newest data once it holds the write lock.

``release_claim`` undoes a claim that was never dialed (the attempt does not count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import PickKind
from asterisk_cube.db import models as m

from .campaigns import CampaignConfig

CLAIMABLE = (m.ContactStatus.NEW, m.ContactStatus.NOT_ANSWERED, m.ContactStatus.CALLBACK)
PENDING_CALLBACK = (m.CallbackStatus.PENDING, m.CallbackStatus.QUEUED)
ALL_KINDS = frozenset(PickKind)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_KIND_RANK = {PickKind.CALLBACK: 0, PickKind.FRESH: 1, PickKind.RETRY: 2}
# Core table aliases made once, not ORM ``aliased()`` per claim: the same SQL, but building
# the statement (every claim, on the event loop) cost more than running it (profiled)
_C = m.Contact.__table__.alias("c")
_CB = m.ScheduledCallback.__table__.alias("cb")


@dataclass(frozen=True)
class Claim:
    """A contact claimed for one dial. ``attempt`` is this dial's number in the series."""

    contact_id: int
    campaign_id: int
    phone: str
    name: str | None
    kind: PickKind
    attempt: int
    callback_id: int | None = None
    callback_agent_id: int | None = None  # the callback was scheduled for this agent
    reserved_for: int | None = None  # ... and is still reserved for it
    reserved_until: dt.datetime | None = None
    comment: str = ""  # the callback's comment, shown to the agent on delivery
    due_at: dt.datetime | None = None
    #: how the contact's previous attempt ended (``None``: never dialed) and the list it
    #: came from: its answer odds' stratum (core.answer_odds), read with the claim
    last_result: str | None = None
    list_id: int | None = None


def claim_contacts(
    s: Session,
    campaign: CampaignConfig,
    now: dt.datetime,
    limit: int,
    *,
    node: str,
    for_agent: int | None = None,
    logged_in: Iterable[int] = (),
    kinds: Iterable[PickKind] = ALL_KINDS,
) -> list[Claim]:
    """Claim up to ``limit`` contacts of ``campaign`` to dial now, best first.

    ``for_agent``: dialing for this agent (preview, or a callback delivery): its reserved
    callbacks are included and come first. ``logged_in``: agents logged in now (a callback
    reserved for an agent who is not here goes to anyone). ``kinds``: which picks to
    consider (e.g. only callbacks). The claimed rows are ``dialing`` with the attempt
    counted when this returns; the caller commits.
    """
    kinds = frozenset(kinds)
    if limit <= 0 or not kinds or not core.in_window(campaign.rules, now):
        return []
    logged = sorted(set(logged_in))
    rules = campaign.rules
    c_from, cb_from = _C, _CB
    c, cb = c_from.c, cb_from.c

    reserved_ok = [cb.agent_id.is_(None), cb.due_at <= now - rules.reservation]
    if for_agent is not None:
        reserved_ok.append(cb.agent_id == for_agent)
    reserved_ok.append(cb.agent_id.not_in(logged) if logged else literal(True))
    callback_due = and_(
        c.status == m.ContactStatus.CALLBACK,
        c.attempts < rules.max_attempts,
        exists(
            select(cb.id)
            .where(
                cb.contact_id == c.id,
                cb.status.in_(PENDING_CALLBACK),
                cb.due_at <= now,
                or_(*reserved_ok),
            )
            .correlate(c_from)
        ),
    )
    fresh = and_(c.status == m.ContactStatus.NEW, c.attempts == 0)
    retry = and_(
        c.attempts < rules.max_attempts,
        or_(
            and_(c.status == m.ContactStatus.NEW, c.attempts > 0),
            and_(
                c.status == m.ContactStatus.NOT_ANSWERED,
                or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
            ),
        ),
    )
    wanted = {PickKind.CALLBACK: callback_due, PickKind.FRESH: fresh, PickKind.RETRY: retry}
    due = or_(*(cond for kind, cond in wanted.items() if kind in kinds))

    epoch = literal(EPOCH, m.UTCDateTime())
    cb_due = (
        select(func.min(cb.due_at))
        .where(cb.contact_id == c.id, cb.status.in_(PENDING_CALLBACK))
        .correlate(c_from)
        .scalar_subquery()
    )
    is_callback = c.status == m.ContactStatus.CALLBACK
    rank = case((is_callback, 0), (fresh, 1), else_=2)
    mine: ColumnElement[int] = literal(1)
    if for_agent is not None and for_agent in logged:  # its reservations hold: first
        mine = case(
            (
                exists(
                    select(cb.id)
                    .where(
                        cb.contact_id == c.id,
                        cb.status.in_(PENDING_CALLBACK),
                        cb.agent_id == for_agent,
                        cb.due_at > now - rules.reservation,
                    )
                    .correlate(c_from)
                ),
                0,
            ),
            else_=1,
        )
    when = case(
        (is_callback, func.coalesce(cb_due, epoch)),
        (fresh, epoch),
        else_=func.coalesce(c.next_attempt_at, epoch),
    )
    chosen = (
        select(c.id)
        .where(c.campaign_id == campaign.campaign_id, due)
        .order_by(rank, mine, when, c.id)
        .limit(limit)
    )
    if s.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True, of=c_from)
    claimed = s.execute(
        update(m.Contact)
        .where(m.Contact.id.in_(chosen), m.Contact.status.in_(CLAIMABLE))
        .values(
            status=m.ContactStatus.DIALING,
            attempts=m.Contact.attempts + 1,
            last_attempt_at=now,
            claimed_by=node,
        )
        .returning(m.Contact.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    ids = list(claimed)
    if not ids:
        return []
    return _describe(s, ids, campaign, now, for_agent, set(logged))


def any_callback_due(s: Session, campaign: CampaignConfig, now: dt.datetime) -> bool:
    """Is a scheduled callback of ``campaign`` due now, for anyone (reservations aside)?
    One cheap query: when it says no, no agent's callback claim can find one."""
    if not core.in_window(campaign.rules, now):
        return False
    found = s.execute(
        select(m.ScheduledCallback.id)
        .join(m.Contact, m.Contact.id == m.ScheduledCallback.contact_id)
        .where(
            m.Contact.campaign_id == campaign.campaign_id,
            m.Contact.status == m.ContactStatus.CALLBACK,
            m.Contact.attempts < campaign.rules.max_attempts,
            m.ScheduledCallback.status.in_(PENDING_CALLBACK),
            m.ScheduledCallback.due_at <= now,
        )
        .limit(1)
    ).first()
    return found is not None


def _describe(
    s: Session,
    ids: list[int],
    campaign: CampaignConfig,
    now: dt.datetime,
    for_agent: int | None,
    logged_in: set[int],
) -> list[Claim]:
    rows = s.execute(
        select(
            m.Contact.id,
            m.Contact.phone,
            m.Contact.name,
            m.Contact.attempts,
            m.Contact.next_attempt_at,
            m.Contact.list_id,
        ).where(m.Contact.id.in_(ids))
    ).all()
    last_results = _last_results(s, ids)
    callbacks: dict[int, m.ScheduledCallback] = {}
    for cbrow in s.scalars(
        select(m.ScheduledCallback)
        .where(
            m.ScheduledCallback.contact_id.in_(ids),
            m.ScheduledCallback.status.in_(PENDING_CALLBACK),
            m.ScheduledCallback.due_at <= now,
        )
        .order_by(m.ScheduledCallback.due_at)
    ):
        callbacks.setdefault(cbrow.contact_id, cbrow)
    keyed = []
    for contact_id, phone, name, attempts, next_at, list_id in rows:
        last = last_results.get(contact_id)
        due = callbacks.get(contact_id)
        if due is not None:
            holder, until = core.reservation(
                core.Callback(due.due_at, due.agent_id, due.comment, due.id),
                campaign.rules,
                now,
                frozenset(logged_in),
            )
            claim = Claim(
                contact_id,
                campaign.campaign_id,
                phone,
                name,
                PickKind.CALLBACK,
                attempts,
                callback_id=due.id,
                callback_agent_id=due.agent_id,
                reserved_for=holder,
                reserved_until=until,
                comment=due.comment or "",
                due_at=due.due_at,
                last_result="callback",
                list_id=list_id,
            )
            mine = 0 if for_agent is not None and holder == for_agent else 1
            key = (0, mine, due.due_at.timestamp(), contact_id)
        else:
            kind = PickKind.FRESH if attempts == 1 else PickKind.RETRY
            claim = Claim(
                contact_id,
                campaign.campaign_id,
                phone,
                name,
                kind,
                attempts,
                last_result=last,
                list_id=list_id,
            )
            when = next_at.timestamp() if kind is PickKind.RETRY and next_at else float("-inf")
            key = (_KIND_RANK[kind], 1, when, contact_id)
        keyed.append((key, claim))
    keyed.sort(key=lambda kc: kc[0])
    return [claim for _key, claim in keyed]


def _last_results(s: Session, ids: list[int]) -> dict[int, str]:
    """How each contact's latest finished attempt ended (one query for the claim)."""
    a = m.ContactAttempt
    out: dict[int, str] = {}
    rows = s.execute(
        select(a.contact_id, a.result)
        .where(a.contact_id.in_(ids), a.result.is_not(None))
        .order_by(a.contact_id, a.started_at.desc(), a.id.desc())
    )
    for contact_id, result in rows:
        out.setdefault(contact_id, str(result))
    return out


# --------------------------------------------------------------- state <-> rows


def pending_callback(s: Session, contact_id: int) -> m.ScheduledCallback | None:
    return s.scalar(
        select(m.ScheduledCallback)
        .where(
            m.ScheduledCallback.contact_id == contact_id,
            m.ScheduledCallback.status.in_(PENDING_CALLBACK),
        )
        .order_by(m.ScheduledCallback.due_at)
        .limit(1)
    )


def contact_state(s: Session, row: m.Contact) -> core.ContactState:
    """The core's view of a contact row (with its pending callback, if any)."""
    cbrow = pending_callback(s, row.id)
    callback = (
        core.Callback(cbrow.due_at, cbrow.agent_id, cbrow.comment or "", cbrow.id)
        if cbrow is not None
        else None
    )
    return core.ContactState(
        contact_id=row.id,
        status=core.ContactStatus(row.status.value),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        position=row.id,
        callback=callback,
    )


def write_state(row: m.Contact, state: core.ContactState) -> None:
    row.status = m.ContactStatus(state.status.value)
    row.attempts = state.attempts
    row.next_attempt_at = state.next_attempt_at
    row.last_attempt_at = state.last_attempt_at
    if state.status is not core.ContactStatus.DIALING:
        row.claimed_by = None


def release_claim(
    s: Session, contact_id: int, now: dt.datetime, *, retry_at: dt.datetime | None = None
) -> bool:
    """Put back a claimed contact that was never dialed (due again at ``retry_at`` if
    given, else at once); False if it was not claimed."""
    row = s.get(m.Contact, contact_id, with_for_update=True)
    if row is None or row.status != m.ContactStatus.DIALING:
        return False
    write_state(row, core.release(contact_state(s, row), now, retry_at=retry_at))
    return True
