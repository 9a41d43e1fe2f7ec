"""Opening hours with holidays (F-S8): is a client open now, until when, and when does it open next.

Decides the branch the answering-service dialplan takes (open / closed /
holiday) and gives the agent hours to read out. Also used for a campaign's
calling windows (a schedule without holidays).

Rules, all in the client's IANA zone and on *wall-clock* time, because that is
what "08:00-16:00" means to people:

- a day's plan is, in order of precedence: the client's dated entry for that
  day (special hours, or closed for the client's own holiday), else a public
  holiday (closed), else the weekly hours for that weekday;
- a day may have several intervals; an interval whose closing time is at or
  before its opening time runs past midnight into the next day (``22:00-06:00``;
  ``00:00-00:00`` is the whole day), and it belongs to the day it *starts* on:
  Friday ``22:00-02:00`` keeps the service open early on a holiday Saturday;
- across DST changes, intervals keep their wall-clock times (a 22:00-06:00 night
  is 7 h or 9 h long). Times that do not exist (the spring-forward gap) map to
  the moment the clocks jump; in the repeated autumn hour the first occurrence
  is used for reported times.

Public holidays come in as an explicit ``{date: name}`` mapping;
:func:`public_holidays` builds it with the ``holidays`` package so this module
stays pure. Texts for people are built from :class:`HoursWords` passed in, so
the web layer can translate them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

NO_HOLIDAYS: Mapping[date, str] = {}
_HORIZON_DAYS = 400  # how far to look for the next opening
_MERGE_DAYS = 14  # how far to follow back-to-back intervals for "open until"


class HoursStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


class DayKind(StrEnum):
    WEEKLY = "weekly"  # the ordinary weekly hours
    SPECIAL = "special"  # the client's dated special hours (empty = closed that day)
    HOLIDAY = "holiday"  # the client's own dated holiday (closed)
    PUBLIC_HOLIDAY = "public_holiday"  # national holiday (closed)


_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")


def parse_time(text: str) -> time:
    """``"8:00"``/``"08.00"`` -> ``time(8, 0)``; ``"24:00"`` is midnight. Raises ``ValueError``."""
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"not a time (HH:MM): {text!r}")
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour == 24 and minute == 0:
        return time(0)
    return time(hour, minute)


@dataclass(frozen=True)
class Interval:
    """Open from ``opens`` to ``closes``; ``closes <= opens`` means it ends the next day."""

    opens: time
    closes: time

    @classmethod
    def parse(cls, text: str) -> Interval:
        """``"08:00-16:00"`` (also en dash); raises ``ValueError`` naming the input."""
        parts = re.split(r"\s*[-–]\s*", text.strip())
        if len(parts) != 2:
            raise ValueError(f"not an interval (HH:MM-HH:MM): {text!r}")
        return cls(parse_time(parts[0]), parse_time(parts[1]))

    @property
    def spans_midnight(self) -> bool:
        return self.closes <= self.opens

    def on(self, day: date) -> tuple[datetime, datetime]:
        """The naive wall-clock period this interval covers when it starts on ``day``."""
        start = datetime.combine(day, self.opens)
        end_day = day + timedelta(days=1) if self.spans_midnight else day
        return start, datetime.combine(end_day, self.closes)


def _intervals(items: Iterable[Interval | str]) -> tuple[Interval, ...]:
    parsed = (i if isinstance(i, Interval) else Interval.parse(i) for i in items)
    return tuple(sorted(parsed, key=lambda i: (i.opens, i.closes)))


@dataclass(frozen=True)
class DayOverride:
    """A client's dated entry: special hours that day, or closed (no intervals).

    ``holiday`` marks a closed day as the client's holiday (verdict ``holiday``
    rather than ``closed``).
    """

    day: date
    intervals: tuple[Interval, ...] = ()
    name: str = ""
    holiday: bool = False


@dataclass(frozen=True)
class DayPlan:
    day: date
    intervals: tuple[Interval, ...]
    kind: DayKind
    name: str = ""

    @property
    def is_holiday(self) -> bool:
        return self.kind in (DayKind.HOLIDAY, DayKind.PUBLIC_HOLIDAY)


@dataclass(frozen=True)
class Schedule:
    """Weekly hours (``week[0]`` = Monday) plus dated overrides and public holidays, in ``zone``."""

    zone: str
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    overrides: Mapping[date, DayOverride] = field(default_factory=dict)
    public_holidays: Mapping[date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("week needs 7 days, Monday first")
        ZoneInfo(self.zone)  # raises for an unknown zone

    @classmethod
    def build(
        cls,
        zone: str,
        weekly: Mapping[int, Iterable[Interval | str]] | None = None,
        overrides: Iterable[DayOverride] = (),
        public_holidays: Mapping[date, str] = NO_HOLIDAYS,
    ) -> Schedule:
        """Convenience constructor: ``weekly={0: ["08:00-16:00"], ...}`` (0 = Monday).

        Several overrides for one day are merged (their intervals combined).
        """
        weekly = weekly or {}
        for weekday in weekly:
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekday must be 0 (Monday) to 6, got {weekday}")
        week = tuple(_intervals(weekly.get(d, ())) for d in range(7))
        merged: dict[date, DayOverride] = {}
        for o in overrides:
            prev = merged.get(o.day)
            if prev is None:
                merged[o.day] = DayOverride(o.day, _intervals(o.intervals), o.name, o.holiday)
            else:
                merged[o.day] = DayOverride(
                    o.day,
                    _intervals(prev.intervals + o.intervals),
                    prev.name or o.name,
                    prev.holiday and o.holiday,
                )
        return cls(zone, week, merged, dict(public_holidays))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def plan(self, day: date) -> DayPlan:
        """The hours that apply on ``day`` (see the module docstring for precedence)."""
        override = self.overrides.get(day)
        if override is not None:
            if not override.intervals and override.holiday:
                return DayPlan(day, (), DayKind.HOLIDAY, override.name)
            return DayPlan(day, override.intervals, DayKind.SPECIAL, override.name)
        name = self.public_holidays.get(day)
        if name is not None:
            return DayPlan(day, (), DayKind.PUBLIC_HOLIDAY, name)
        return DayPlan(day, self.week[day.weekday()], DayKind.WEEKLY)


def _periods(schedule: Schedule, first_day: date, days: int) -> Iterator[tuple[datetime, datetime]]:
    """Naive wall-clock periods starting on ``first_day`` onwards, in order of start."""
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for interval in schedule.plan(day).intervals:
            yield interval.on(day)


def wall_to_aware(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose local wall-clock time in ``tz`` is ``wall`` or later.

    Plain for ordinary times; in the repeated autumn hour the first occurrence;
    in the spring-forward gap, the instant the clocks jump.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: search the jump between the two readings (to the second).
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first.astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0).astimezone(tz)


def _aware_after(wall: datetime, tz: ZoneInfo, now: datetime) -> datetime:
    """:func:`wall_to_aware`, but the second occurrence of a repeated time if the first is past."""
    first = wall_to_aware(wall, tz)
    if first <= now:
        second = wall.replace(tzinfo=tz, fold=1)
        if second > now:
            return second
    return first


@dataclass(frozen=True)
class HoursVerdict:
    """Open/closed/holiday at one instant, with the times the agent or dialplan needs.

    ``closes_at`` (when open; ``None`` if no closing within two weeks) and
    ``next_open`` (when not open; ``None`` if it never opens within ~13 months)
    are aware datetimes in the client's zone. ``holiday_name`` names today's
    holiday when the status is ``HOLIDAY``.
    """

    status: HoursStatus
    local_time: datetime
    closes_at: datetime | None = None
    next_open: datetime | None = None
    holiday_name: str | None = None
    day_kind: DayKind = DayKind.WEEKLY

    @property
    def is_open(self) -> bool:
        return self.status is HoursStatus.OPEN


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def status_at(schedule: Schedule, now: datetime) -> HoursVerdict:
    """Is the client open at ``now`` (aware), until when, or when does it open next."""
    _require_aware(now)
    tz = schedule.tz
    local = now.astimezone(tz)
    wall = local.replace(tzinfo=None)
    today = wall.date()
    plan = schedule.plan(today)

    current_end: datetime | None = None
    for start, end in _periods(schedule, today - timedelta(days=1), 2):
        if start <= wall < end:
            current_end = end if current_end is None else max(current_end, end)
    if current_end is not None:
        closes = _follow_chain(schedule, today, current_end)
        return HoursVerdict(
            HoursStatus.OPEN,
            local,
            closes_at=_aware_after(closes, tz, now) if closes else None,
            day_kind=plan.kind,
        )

    next_open = None
    for start, _end in _periods(schedule, today, _HORIZON_DAYS):
        if start > wall:
            next_open = _aware_after(start, tz, now)
            break
    if plan.is_holiday:
        return HoursVerdict(
            HoursStatus.HOLIDAY,
            local,
            next_open=next_open,
            holiday_name=plan.name,
            day_kind=plan.kind,
        )
    return HoursVerdict(HoursStatus.CLOSED, local, next_open=next_open, day_kind=plan.kind)


def _follow_chain(schedule: Schedule, today: date, end: datetime) -> datetime | None:
    """Extend ``end`` across periods that start before or exactly when the previous one ends."""
    for start, later_end in _periods(schedule, today, _MERGE_DAYS):
        if start > end:
            return end
        end = max(end, later_end)
    horizon = datetime.combine(today + timedelta(days=_MERGE_DAYS - 1), time())
    return None if end >= horizon else end


def is_open(schedule: Schedule, now: datetime) -> bool:
    return status_at(schedule, now).is_open


# ------------------------------------------------------------------ summaries


@dataclass(frozen=True)
class WeekLine:
    """Weekdays ``first``..``last`` (0 = Monday) sharing the same hours (empty = closed)."""

    first: int
    last: int
    intervals: tuple[Interval, ...]


@dataclass(frozen=True)
class HoursSummary:
    week: tuple[WeekLine, ...]
    upcoming: tuple[DayPlan, ...]  # dated days in the coming period that differ from the week


def summarize(schedule: Schedule, today: date, days_ahead: int = 14) -> HoursSummary:
    """Structured hours for the agent: the week grouped, plus upcoming days that differ."""
    lines: list[WeekLine] = []
    for weekday, intervals in enumerate(schedule.week):
        if lines and lines[-1].intervals == intervals:
            lines[-1] = WeekLine(lines[-1].first, weekday, intervals)
        else:
            lines.append(WeekLine(weekday, weekday, intervals))
    upcoming = []
    for offset in range(days_ahead):
        plan = schedule.plan(today + timedelta(days=offset))
        if plan.kind is not DayKind.WEEKLY and plan.intervals != schedule.week[plan.day.weekday()]:
            upcoming.append(plan)
    return HoursSummary(tuple(lines), tuple(upcoming))


@dataclass(frozen=True)
class HoursWords:
    """Wording for :func:`format_summary`; pass translated words (English by default)."""

    day_names: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    closed: str = "closed"
    day_range: str = "–"
    time_range: str = "–"
    interval_sep: str = ", "
    line_sep: str = "; "
    date_format: str = "%d.%m"
    time_format: str = "%H:%M"


def _format_intervals(intervals: tuple[Interval, ...], words: HoursWords) -> str:
    if not intervals:
        return words.closed
    return words.interval_sep.join(
        f"{i.opens.strftime(words.time_format)}{words.time_range}{_end_text(i.closes, words)}"
        for i in intervals
    )


def _end_text(closes: time, words: HoursWords) -> str:
    """A closing time; midnight as an end is ``24:00`` on a 24-hour clock (``00:00-24:00``
    is the whole day, as people write it)."""
    fmt = words.time_format.replace("%H", "24") if closes == time(0) else words.time_format
    return closes.strftime(fmt)


def format_summary(summary: HoursSummary, words: HoursWords | None = None) -> str:
    """One line to read out, e.g. ``Mon–Fri 08:00–16:00; Sat–Sun closed; 17.05 closed (X)``."""
    words = words or HoursWords()
    parts = []
    for line in summary.week:
        days = words.day_names[line.first]
        if line.last != line.first:
            days += words.day_range + words.day_names[line.last]
        parts.append(f"{days} {_format_intervals(line.intervals, words)}")
    for plan in summary.upcoming:
        text = f"{plan.day.strftime(words.date_format)} {_format_intervals(plan.intervals, words)}"
        if plan.name:
            text += f" ({plan.name})"
        parts.append(text)
    return words.line_sep.join(parts)


# ------------------------------------------------------------- public holidays


def public_holidays(
    country: str,
    years: Iterable[int],
    *,
    subdiv: str | None = None,
    language: str | None = None,
) -> dict[date, str]:
    """National holidays ``{date: name}`` from the ``holidays`` package (``NO``, ``SE``, ``RS``...).

    ``language`` picks the names' language: the package's codes (``"no"``, ``"sv"``,
    ``"sr"``, ``"en_US"``) or ours (``nb``/``nn`` -> ``no``, ``en`` -> ``en_US``). When the
    country's table does not have it, or none is given, the names are in the country's own
    language (``Andre juledag``, ``Annandag jul``), never the package's English fallback.
    Raises ``ValueError`` for an unknown country code.
    """
    import holidays  # local: only adapters building a Schedule need it

    try:
        kind = type(holidays.country_holidays(country.upper(), subdiv=subdiv, years=[]))
    except NotImplementedError as exc:
        raise ValueError(f"no holiday calendar for country {country!r}") from exc
    wanted = HOLIDAY_LANGUAGES.get((language or "").lower(), language)
    supported = getattr(kind, "supported_languages", ())
    chosen = wanted if wanted in supported else getattr(kind, "default_language", None)
    table = holidays.country_holidays(
        country.upper(), subdiv=subdiv, years=list(years), language=chosen
    )
    return {day: str(name) for day, name in sorted(table.items())}


# Our language codes (clients, agents) -> the ``holidays`` package's.
HOLIDAY_LANGUAGES = {"nb": "no", "nn": "no", "no": "no", "sv": "sv", "sr": "sr", "en": "en_US"}
