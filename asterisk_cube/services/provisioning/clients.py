"""Answering-service clients: add, opening hours, special days, list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.core.weekly import format_weekly
from asterisk_cube.db import models as m

from .common import (
    _EMAIL,
    ProvisioningError,
    _enum_value,
    check_own_number,
    check_positive,
    check_timezone,
    get_client,
    parse_weekly_spec,
)


def add_client(
    s: Session,
    name: str,
    greeting: str = "",
    greeting_informal: str = "",
    instruction: str = "",
    tone: str = "formal",
    timezone: str = "Europe/Oslo",
    region: str = "NO",
    holiday_country: str | None = None,
    handling: str = "note",
    forward1: str | None = None,
    forward2: str | None = None,
    closed_handling: str = "note",
    hours: str | None = None,
    adblock: bool = False,
    own_numbers: Iterable[str] = (),
    recipients: Iterable[str] = (),
    customer_number: str | None = None,
    forward_timeout: int = 20,
) -> m.Client:
    name = name.strip()
    if not name:
        raise ProvisioningError("client name is empty")
    tone_v = _enum_value(m.Tone, tone, "tone")
    handling_v = _enum_value(m.Handling, handling, "handling")
    closed_v = _enum_value(m.ClosedHandling, closed_handling, "closed handling")
    if handling_v == m.Handling.FORWARD and not forward1:
        raise ProvisioningError("forward handling needs a first forward target")
    check_timezone(timezone)
    intervals = parse_weekly_spec(hours, "opening hours") if hours else []
    if holiday_country:
        _check_holiday_country(holiday_country)
    check_positive(forward_timeout, "forward timeout (seconds)", 3)
    own = list(dict.fromkeys(check_own_number(n, region) for n in own_numbers))
    mails = list(recipients)
    for mail in mails:
        if not _EMAIL.match(mail):
            raise ProvisioningError(f"recipient {mail!r} is not an e-mail address")
    if s.scalar(select(m.Client).where(m.Client.name == name)):
        raise ProvisioningError(f"client {name!r} already exists")
    client = m.Client(
        name=name,
        customer_number=customer_number,
        greeting=greeting,
        greeting_informal=greeting_informal,
        work_instruction=instruction,
        tone=tone_v,
        timezone=timezone,
        phone_region=region.upper(),
        holiday_country=holiday_country.upper() if holiday_country else None,
        standard_handling=handling_v,
        forward_target1=forward1,
        forward_target2=forward2,
        forward_timeout_seconds=forward_timeout,
        closed_handling=closed_v,
        adblock_enabled=adblock,
        own_numbers=own,
    )
    client.hours = [
        m.OpeningHours(weekday=iv.weekday, opens=iv.starts, closes=iv.ends) for iv in intervals
    ]
    client.recipients = [m.NoteRecipient(email=mail) for mail in dict.fromkeys(mails)]
    s.add(client)
    s.flush()
    return client


def _check_holiday_country(code: str) -> None:
    import holidays

    if code.upper() not in holidays.list_supported_countries():
        raise ProvisioningError(f"no national holidays known for country {code!r}")


def set_client_hours(s: Session, name: str, hours: str) -> m.Client:
    intervals = parse_weekly_spec(hours, "opening hours")
    client = get_client(s, name)
    client.hours = [
        m.OpeningHours(weekday=iv.weekday, opens=iv.starts, closes=iv.ends) for iv in intervals
    ]
    touch_client(client)
    s.flush()
    return client


def touch_client(client: m.Client) -> None:
    """Mark the client's configuration as changed: the FastAGI entry cache of every running
    ``serve`` compares ``max(clients.updated_at)`` (among others) to notice changes made by
    another process. Child-row changes (hours, days, lists) do not update the row by
    themselves."""
    client.updated_at = m.utcnow()


def add_special_day(
    s: Session, name: str, day: str, label: str = "", hours: str | None = None
) -> m.SpecialDay:
    """A holiday (no hours) or a day with other hours (``hours='10:00-14:00'``)."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise ProvisioningError(f"date {day!r} must be YYYY-MM-DD") from None
    opens = closes = None
    if hours:
        spec = parse_weekly_spec(f"mon {hours}", "special-day hours")[0]
        opens, closes = spec.starts, spec.ends
    client = get_client(s, name)
    if any(sd.day == date for sd in client.special_days):
        raise ProvisioningError(f"{date} is already a special day for {name}")
    special = m.SpecialDay(
        day=date,
        kind=m.SpecialDayKind.SPECIAL if hours else m.SpecialDayKind.HOLIDAY,
        name=label,
        opens=opens,
        closes=closes,
    )
    client.special_days.append(special)
    touch_client(client)
    s.flush()
    return special


def client_rows(s: Session) -> list[dict[str, Any]]:
    from asterisk_cube.core.weekly import WeeklyInterval

    rows = []
    for c in s.scalars(select(m.Client).order_by(m.Client.name)):
        rows.append(
            {
                "name": c.name,
                "tone": c.tone.value,
                "handling": c.standard_handling.value,
                "hours": format_weekly(
                    [WeeklyInterval(h.weekday, h.opens, h.closes) for h in c.hours]
                )
                if c.hours
                else "",
                "timezone": c.timezone,
                "lines": ",".join(line.did for line in c.lines),
                "adblock": c.adblock_enabled,
                "recipients": ",".join(r.email for r in c.recipients),
            }
        )
    return rows
