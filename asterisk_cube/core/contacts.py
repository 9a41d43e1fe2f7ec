"""Which contact a campaign dials next, and what a dial's outcome does to a contact
(F-D1, F-E5, F-E6).

The dialer asks :func:`pick_contacts` for the next contacts, claims them in
the database (``SELECT ... FOR UPDATE SKIP LOCKED``), marks each with
:func:`start_attempt`, and after the call applies :func:`record_outcome`.

Selection rules:

- nothing is dialed outside the campaign's calling windows (weekly windows in
  the campaign's zone, :class:`~asterisk_cube.core.hours.Schedule`);
- order: due scheduled callbacks (oldest due first) before fresh contacts
  (list order) before retries (the longest overdue first);
- never beyond ``max_attempts``, never before ``next_attempt_at``, never a
  contact that is being dialed (status ``dialing``) or closed;
- a scheduled callback for one agent is reserved for that agent from its due
  time for the campaign's reservation minutes; while the reservation holds it
  is picked only when dialing *for that agent*; if the agent is logged out,
  or the reservation ran out, it goes to anyone (F-E6).

Attempts count the dials of the current series: scheduling a callback starts a
new series (the customer asked to be called), so an agreed callback is dialed
even when the first series used up its attempts, and ``max_attempts`` still
bounds the callback's own retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from .hours import NO_HOLIDAYS, HoursVerdict, Interval, Schedule, status_at


class ContactStatus(StrEnum):
    NEW = "new"
    DIALING = "dialing"
    NOT_ANSWERED = "not_answered"
    CALLBACK = "callback"
    DONE = "done"
    EXHAUSTED = "exhausted"
    INVALID = "invalid"


CLOSED_STATUSES = frozenset({ContactStatus.DONE, ContactStatus.EXHAUSTED, ContactStatus.INVALID})


class Outcome(StrEnum):
    """How a dial ended, from the dialer or the agent's feedback."""

    NO_ANSWER = "no_answer"  # rang out, or the agent hung up while it rang
    BUSY = "busy"
    FAILED = "failed"  # congestion, unreachable
    MACHINE = "machine"  # answering machine (AMD, or the agent's "not answered" feedback, F-E5)
    ABANDONED = "abandoned"  # answered but no agent within 2 s: not the contact's fault
    FINAL = "final"  # reached and closed with a final result (sale, not interested...)
    CALLBACK = "callback"  # reached, a callback is scheduled (F-E6)
    INVALID = "invalid"  # the number is unusable


RETRY_OUTCOMES = frozenset(
    {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.MACHINE, Outcome.ABANDONED}
)


class ContactError(ValueError):
    """An operation that does not apply to the contact in its state."""


@dataclass(frozen=True)
class Callback:
    """A scheduled callback: for one agent (``agent_id``) or for all agents (``None``)."""

    due_at: datetime
    agent_id: int | None = None
    comment: str = ""
    callback_id: int | None = None


@dataclass(frozen=True)
class ContactState:
    """The dialing state of one contact (mirrors the ``contacts`` row, plus its pending
    callback). ``position`` orders fresh contacts (list order, e.g. the row id)."""

    contact_id: int
    status: ContactStatus = ContactStatus.NEW
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    position: int = 0
    callback: Callback | None = None


def _always() -> Schedule:
    return Schedule.build("UTC", {d: ["00:00-00:00"] for d in range(7)})


@dataclass(frozen=True)
class CampaignRules:
    windows: Schedule = field(default_factory=_always)
    max_attempts: int = 3
    retry_interval: timedelta = timedelta(minutes=60)
    reservation: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.retry_interval < timedelta(0) or self.reservation < timedelta(0):
            raise ValueError("retry interval and reservation cannot be negative")

    @classmethod
    def build(
        cls,
        zone: str,
        windows: Iterable[tuple[int, time, time]],
        *,
        max_attempts: int = 3,
        retry_interval: timedelta = timedelta(minutes=60),
        reservation: timedelta = timedelta(minutes=15),
        holidays: dict[date, str] | None = None,
    ) -> CampaignRules:
        """From ``calling_windows`` rows ``(weekday, starts, ends)``; optional holidays close
        the windows on those dates."""
        weekly: dict[int, list[Interval]] = {}
        for weekday, starts, ends in windows:
            weekly.setdefault(weekday, []).append(Interval(starts, ends))
        schedule = Schedule.build(zone, weekly, public_holidays=holidays or NO_HOLIDAYS)
        return cls(schedule, max_attempts, retry_interval, reservation)


# ------------------------------------------------------------------- windows


def window_status(rules: CampaignRules, now: datetime) -> HoursVerdict:
    """Open/closed for dialing, with ``closes_at`` / ``next_open``."""
    return status_at(rules.windows, now)


def in_window(rules: CampaignRules, now: datetime) -> bool:
    return window_status(rules, now).is_open


# ------------------------------------------------------------------ selection


class PickKind(StrEnum):
    CALLBACK = "callback"
    FRESH = "fresh"
    RETRY = "retry"


@dataclass(frozen=True)
class Pick:
    """A contact to dial now. ``reserved_for``/``reserved_until`` are set while a callback
    reservation holds; ``comment`` is the callback's comment to show the agent."""

    contact: ContactState
    kind: PickKind
    reserved_for: int | None = None
    reserved_until: datetime | None = None
    comment: str = ""


def reservation(
    callback: Callback, rules: CampaignRules, now: datetime, logged_in: frozenset[int]
) -> tuple[int | None, datetime | None]:
    """Who a due callback is reserved for right now, and until when (``(None, None)``: anyone)."""
    if callback.agent_id is None or callback.agent_id not in logged_in:
        return None, None
    until = callback.due_at + rules.reservation
    if now >= until:
        return None, None
    return callback.agent_id, until


def due_kind(contact: ContactState, rules: CampaignRules, now: datetime) -> PickKind | None:
    """Why this contact may be dialed now (ignoring the calling window), or ``None``."""
    status = contact.status
    if status is ContactStatus.CALLBACK:
        if contact.callback is not None and contact.callback.due_at <= now:
            return PickKind.CALLBACK if contact.attempts < rules.max_attempts else None
        return None
    if contact.attempts >= rules.max_attempts:
        return None
    if status is ContactStatus.NEW:
        return PickKind.FRESH if contact.attempts == 0 else PickKind.RETRY
    if status is ContactStatus.NOT_ANSWERED:
        due = contact.next_attempt_at is None or contact.next_attempt_at <= now
        return PickKind.RETRY if due else None
    return None  # dialing, done, exhausted, invalid


def pick_contacts(
    contacts: Iterable[ContactState],
    rules: CampaignRules,
    now: datetime,
    limit: int = 1,
    *,
    agent_id: int | None = None,
    logged_in: frozenset[int] = frozenset(),
) -> tuple[Pick, ...]:
    """Up to ``limit`` contacts to dial now, best first (see the module docstring).

    ``agent_id``: dialing for this agent (preview mode, or a predictive line meant for it):
    its reserved callbacks are included. ``None``: dialing for the pool; callbacks reserved
    for a logged-in agent are left for that agent. ``logged_in``: agents logged in now.
    """
    if limit <= 0 or not in_window(rules, now):
        return ()
    ranked: list[tuple[tuple[Any, ...], Pick]] = []
    for contact in contacts:
        kind = due_kind(contact, rules, now)
        if kind is None:
            continue
        pick = Pick(contact, kind)
        if kind is PickKind.CALLBACK:
            assert contact.callback is not None
            holder, until = reservation(contact.callback, rules, now, logged_in)
            if holder is not None and holder != agent_id:
                continue
            pick = Pick(contact, kind, holder, until, contact.callback.comment)
        ranked.append((_rank(contact, kind, pick, agent_id), pick))
    ranked.sort(key=lambda item: item[0])
    return tuple(pick for _key, pick in ranked[:limit])


def _rank(
    contact: ContactState, kind: PickKind, pick: Pick, agent_id: int | None
) -> tuple[Any, ...]:
    if kind is PickKind.CALLBACK:
        assert contact.callback is not None
        mine_first = 0 if (agent_id is not None and pick.reserved_for == agent_id) else 1
        return (
            0,
            mine_first,
            contact.callback.due_at.timestamp(),
            contact.position,
            contact.contact_id,
        )
    if kind is PickKind.FRESH:
        return (1, 0, 0.0, contact.position, contact.contact_id)
    overdue = contact.next_attempt_at.timestamp() if contact.next_attempt_at else float("-inf")
    return (2, 0, overdue, contact.position, contact.contact_id)


def next_contact(
    contacts: Iterable[ContactState],
    rules: CampaignRules,
    now: datetime,
    *,
    agent_id: int | None = None,
    logged_in: frozenset[int] = frozenset(),
) -> Pick | None:
    picks = pick_contacts(contacts, rules, now, 1, agent_id=agent_id, logged_in=logged_in)
    return picks[0] if picks else None


# ------------------------------------------------------------------- outcomes


def start_attempt(contact: ContactState, now: datetime) -> ContactState:
    """The contact claimed and being dialed: one more attempt. Raises :class:`ContactError`
    for a contact already being dialed or closed."""
    if contact.status is ContactStatus.DIALING:
        raise ContactError(f"contact {contact.contact_id} is already being dialed")
    if contact.status in CLOSED_STATUSES:
        raise ContactError(f"contact {contact.contact_id} is closed ({contact.status})")
    return replace(
        contact,
        status=ContactStatus.DIALING,
        attempts=contact.attempts + 1,
        last_attempt_at=now,
    )


def release(
    contact: ContactState, now: datetime, *, retry_at: datetime | None = None
) -> ContactState:
    """Undo a claim that was never dialed (the attempt does not count). With ``retry_at``
    the contact is due again only then (e.g. a preview contact none of the agents logged
    in answered for): ``not_answered`` with that time, even before its first dial; a
    scheduled callback keeps its own due time."""
    if contact.status is not ContactStatus.DIALING:
        raise ContactError(f"contact {contact.contact_id} is not being dialed")
    attempts = max(contact.attempts - 1, 0)
    if contact.callback is not None:
        return replace(
            contact, status=ContactStatus.CALLBACK, attempts=attempts, next_attempt_at=None
        )
    if retry_at is not None:
        return replace(
            contact, status=ContactStatus.NOT_ANSWERED, attempts=attempts, next_attempt_at=retry_at
        )
    status = ContactStatus.NEW if attempts == 0 else ContactStatus.NOT_ANSWERED
    return replace(contact, status=status, attempts=attempts, next_attempt_at=None)


def record_outcome(
    contact: ContactState,
    outcome: Outcome,
    rules: CampaignRules,
    now: datetime,
    callback: Callback | None = None,
) -> ContactState:
    """The contact after a dial ended with ``outcome``.

    Not reached (no answer, busy, failed, machine, abandoned): back to ``not_answered`` with
    the retry time, or ``exhausted`` when no attempts remain (F-E5). ``final`` closes it,
    ``invalid`` marks the number unusable, ``callback`` (needs ``callback``) schedules it and
    starts a new attempt series (F-E6). Any state is accepted: the agent's feedback after the
    call (e.g. "answering machine" on a call the dialer saw answered) corrects the outcome.
    """
    if outcome is Outcome.CALLBACK:
        if callback is None:
            raise ContactError("a callback outcome needs the callback (time, agent, comment)")
        return replace(
            contact,
            status=ContactStatus.CALLBACK,
            attempts=0,
            next_attempt_at=callback.due_at,
            callback=callback,
        )
    if outcome is Outcome.FINAL:
        return replace(contact, status=ContactStatus.DONE, next_attempt_at=None, callback=None)
    if outcome is Outcome.INVALID:
        return replace(contact, status=ContactStatus.INVALID, next_attempt_at=None, callback=None)
    if outcome in RETRY_OUTCOMES:
        if contact.attempts >= rules.max_attempts:
            return replace(
                contact, status=ContactStatus.EXHAUSTED, next_attempt_at=None, callback=None
            )
        return replace(
            contact,
            status=ContactStatus.NOT_ANSWERED,
            next_attempt_at=now + rules.retry_interval,
            callback=None,
        )
    raise ContactError(f"unknown outcome {outcome!r}")


def callbacks_for(callbacks: Iterable[Callback], agent_id: int) -> tuple[Callback, ...]:
    """The scheduled-calls view of one agent: its own callbacks and those for all agents."""
    return tuple(
        sorted(
            (c for c in callbacks if c.agent_id in (None, agent_id)),
            key=lambda c: c.due_at,
        )
    )
