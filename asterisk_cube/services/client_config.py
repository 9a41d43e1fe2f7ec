"""A client's stored configuration as the pure core's input (F-S1..F-S8).

Shared by the FastAGI entry (hours for the open/closed decision) and the agent's script
view (everything: greeting, exceptions, employees, FAQ, handling). Plain reads; the
callers decide about caching.
"""

from __future__ import annotations

import functools
from datetime import date, datetime

from sqlalchemy.orm import Session

from asterisk_cube.core import script as cs
from asterisk_cube.core.hours import DayOverride, Interval, Schedule, public_holidays
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


def holiday_years(now: datetime) -> tuple[int, ...]:
    """National-holiday years to load at ``now``: last year (a night interval across New
    Year), this year and the next (``status_at`` looks ~13 months ahead for the next opening)."""
    return (now.year - 1, now.year, now.year + 1)


@functools.lru_cache(maxsize=64)
def _holidays(country: str, years: tuple[int, ...], language: str | None) -> dict[date, str]:
    return public_holidays(country, years, language=language)


def client_schedule(client: m.Client, years: tuple[int, ...]) -> Schedule:
    """Weekly hours, the client's dated days and its country's national holidays."""
    weekly: dict[int, list[Interval]] = {}
    for row in client.hours:
        weekly.setdefault(row.weekday, []).append(Interval(row.opens, row.closes))
    overrides = []
    for sd in client.special_days:
        if sd.kind == m.SpecialDayKind.HOLIDAY or sd.opens is None or sd.closes is None:
            overrides.append(DayOverride(sd.day, (), sd.name, holiday=True))
        else:
            overrides.append(DayOverride(sd.day, (Interval(sd.opens, sd.closes),), sd.name))
    national: dict[date, str] = {}
    if client.holiday_country:
        try:
            # Named in the client's language (the agent reads them out in it); the country's
            # own language when the package has no such translation.
            national = _holidays(client.holiday_country, years, client.language)
        except ValueError as exc:
            log.warning("holidays_unavailable", client=client.id, error=str(exc))
    return Schedule.build(client.timezone, weekly, overrides, national)


def _handling(
    kind: m.Handling | None,
    target1: str | None,
    target2: str | None,
    ring_seconds: int = 20,
    fallback: cs.Handling | None = None,
) -> cs.Handling | None:
    """A stored handling as the core's; a forward without a target (bad old data) becomes
    ``fallback`` rather than breaking the script."""
    if kind is None:
        return None
    if kind == m.Handling.FORWARD:
        if not target1:
            return fallback
        return cs.Handling(cs.HandlingKind.FORWARD, target1, target2, max(ring_seconds, 1))
    return cs.NOTE


def own_numbers(client: m.Client) -> tuple[str, ...]:
    """Never a callback number (F-S9): the client's own numbers and its lines' DIDs."""
    return (*(client.own_numbers or ()), *(line.did for line in client.lines))


def load_script_config(s: Session, client_id: int, now: datetime) -> cs.ClientConfig | None:
    """Everything the agent's script needs for one client (None if there is no such client)."""
    client = s.get(m.Client, client_id)
    if client is None:
        return None
    ring = client.forward_timeout_seconds or 20
    standard = _handling(
        client.standard_handling, client.forward_target1, client.forward_target2, ring, cs.NOTE
    )
    employees = tuple(
        cs.Employee(
            employee_id=e.id,
            name=e.name,
            department=e.department or "",
            title=e.title or "",
            handling=_handling(e.handling, e.forward_target1, e.forward_target2, ring, cs.NOTE)
            or cs.NOTE,
            info=e.info or "",
        )
        for e in client.employees
    )
    faq = tuple(
        cs.FaqEntry(
            faq_id=f.id,
            question=f.question,
            answer=f.answer,
            # A FAQ forward goes to the linked employee's targets (the core resolves that
            # when handling is None) or else the client's own forward targets.
            handling=None
            if f.handling == m.Handling.FORWARD and f.employee_id
            else _handling(f.handling, client.forward_target1, client.forward_target2, ring),
            employee_id=f.employee_id,
            position=f.position,
        )
        for f in client.faq
    )
    exceptions = tuple(
        cs.CurrentException(
            instruction=e.instruction,
            starts_at=e.starts_at,
            ends_at=e.ends_at,
            handling=_handling(e.handling, e.forward_target1, e.forward_target2, ring),
            exception_id=e.id,
        )
        for e in client.exceptions
    )
    return cs.ClientConfig(
        client_id=client.id,
        name=client.name,
        hours=client_schedule(client, holiday_years(now)),
        tone=cs.Tone(client.tone.value),
        greeting=client.greeting or "",
        greeting_informal=client.greeting_informal or "",
        work_instruction=client.work_instruction or "",
        standard_handling=standard or cs.NOTE,
        closed_handling=cs.ClosedHandling(client.closed_handling.value),
        exceptions=exceptions,
        employees=employees,
        faq=faq,
        own_numbers=own_numbers(client),
        region=client.phone_region or "NO",
        language=client.language or "nb",
    )
