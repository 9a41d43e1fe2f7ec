"""What every report shares: the period, local-time buckets, durations, filters, output.

Periods and time zones
----------------------
A report covers whole *local* days: ``Period(first, last, zone)`` means from local
midnight at the start of ``first`` to local midnight at the end of ``last`` in the IANA
zone ``zone`` (so a DST day has 23 or 25 hours). Timestamps are stored in UTC; each
event is put in the local day, ISO week (starting Monday) or month in which it happened.

- PostgreSQL converts with its own time-zone database: ``timezone(zone, ts)``.
- SQLite has no time zones, so the UTC offsets that apply during the period are worked
  out in Python (``zoneinfo``) and passed in as a ``CASE`` over the offset changes
  (two a year in Europe): ``date(ts, CASE WHEN ts < :change1 THEN '+3600 seconds'
  ... END)``. This is exact for every instant inside the period; it only needs the
  period to be bounded, which it always is.

Both give the same buckets (the tests run the same history on both).

Durations
---------
Waits and state times are computed in the database, to the millisecond (SQLite's
date functions have millisecond resolution; PostgreSQL's microseconds are rounded
to milliseconds so both backends agree).

Output
------
Every report returns a :class:`Report`: ``columns`` and ``rows`` (plain dicts of
``int``/``float``/``str``/``date``/``None``), ready for a table, a chart, CSV or JSON.
Ratios are fractions (0..1) rounded to 4 decimals, seconds are rounded to 3.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    select,
    type_coerce,
    values,
)
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from asterisk_cube.core.text import csv_text
from asterisk_cube.db import models as m

PERIOD_UNITS = ("day", "week", "month")
MAX_DAYS = 3700  # about ten years: bounds the day table and SQLite's offset CASE
RATIO_DIGITS = 4
SECONDS_DIGITS = 3


#: a column or an ORM attribute, as the report helpers take them
Column = ColumnElement[Any] | QueryableAttribute[Any]


class ReportError(ValueError):
    """Bad report input (dates, grouping, unknown line/campaign/agent); the message says which."""


# ------------------------------------------------------------------- periods


#: Days a report may name: date arithmetic (a week back, the day after, UTC offsets) stays
#: far inside Python's years 1..9999.
FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = dt.date(9998, 12, 31)


def parse_day(text: str, what: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ReportError(f"{what} must be a date like 2026-11-23; got {text!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportError(f"{what} must be between {FIRST_DAY} and {LAST_DAY}; got {text!r}")
    return day


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Oslo)"
        ) from None
    return name


def system_zone() -> str:
    """The machine's IANA zone (``TZ``, else the /etc/localtime link), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        candidates.append(target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "")
    except OSError:
        pass
    for name in candidates:
        try:
            if name:
                return check_zone(name)
        except ReportError:
            continue
    return "UTC"


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of local midnight starting ``day`` (the first instant of the day, if a
    DST gap swallows midnight itself)."""
    naive = dt.datetime.combine(day, dt.time())
    for fold in (0, 1):
        aware = naive.replace(tzinfo=tz, fold=fold)
        # a wall time that does not exist does not survive a round trip through UTC
        back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
        if back == naive:
            return aware.astimezone(dt.UTC)
    # midnight falls in a DST gap (e.g. America/Havana): with fold=0 the wall time is read
    # with the offset before the change, which gives the instant the gap ends
    return naive.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


@dataclass(frozen=True)
class Period:
    """Whole local days ``first``..``last`` (inclusive) in the IANA zone ``zone``."""

    first: dt.date
    last: dt.date
    zone: str = "UTC"

    def __post_init__(self) -> None:
        check_zone(self.zone)
        if self.last < self.first:
            raise ReportError(f"--to ({self.last}) is before --from ({self.first})")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise ReportError(f"a report covers at most {MAX_DAYS} days")

    @classmethod
    def parse(cls, first: str, last: str, zone: str = "UTC") -> Period:
        return cls(parse_day(first, "--from"), parse_day(last, "--to"), check_zone(zone))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def start(self) -> dt.datetime:
        """First instant (UTC, inclusive)."""
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> dt.datetime:
        """End (UTC, exclusive): local midnight after ``last``."""
        return local_midnight(self.last + dt.timedelta(days=1), self.tz)

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def meta(self, **extra: Any) -> dict[str, Any]:
        """A report's ``meta``: the period, then what else the report was asked for."""
        return {"from": self.first, "to": self.last, "zone": self.zone, **extra}


def bucket_of(day: dt.date, unit: str) -> dt.date:
    """The first day of ``day``'s bucket: the day, its ISO week's Monday, or its month's 1st."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise ValueError(unit)


def utc_offsets(zone: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """``[(from_utc, offset_seconds), ...]`` covering ``start``..``end``: the first entry starts
    at ``start``, each next one at an offset change (to the second)."""
    tz = ZoneInfo(zone)

    def offset(t: dt.datetime) -> int:
        return int((t.astimezone(tz).utcoffset() or dt.timedelta()).total_seconds())

    out = [(start, offset(start))]
    t = start
    step = dt.timedelta(hours=6)  # no zone changes its offset twice within 6 hours
    while t < end:
        nxt = min(t + step, end)
        if offset(nxt) != out[-1][1]:
            lo, hi = t, nxt  # offset(lo) == previous, offset(hi) == new
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if offset(mid) == out[-1][1]:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, offset(hi)))
        t = nxt
    return out


# ------------------------------------------------------------ SQL expressions


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _modifier(seconds: int) -> str:
    return f"{seconds:+d} seconds"


def local_bucket(session: Session, ts: Column, unit: str, period: Period) -> ColumnElement[dt.date]:
    """SQL for the local day/week/month (first day, a DATE) of the UTC timestamp ``ts``.

    Exact for timestamps inside ``period`` (see the module docstring)."""
    if unit not in PERIOD_UNITS:
        raise ValueError(unit)
    if not _is_sqlite(session):
        local = func.timezone(period.zone, ts)
        if unit == "day":
            return cast(local, Date)
        return cast(func.date_trunc(unit, local), Date)
    changes = utc_offsets(period.zone, period.start, period.end)
    if len(changes) == 1:
        mod: Any = literal(_modifier(changes[0][1]))
    else:
        whens = [
            (ts < changes[i + 1][0], literal(_modifier(off)))
            for i, (_, off) in enumerate(changes[:-1])
        ]
        mod = case(*whens, else_=literal(_modifier(changes[-1][1])))
    extra = {"day": (), "week": ("weekday 0", "-6 days"), "month": ("start of month",)}[unit]
    return type_coerce(func.date(ts, mod, *extra), Date)


WIDE_RANGE = 0.25


def in_period(
    session: Session, col: Column, start: dt.datetime, end: dt.datetime
) -> ColumnElement[bool]:
    """``start <= col < end``.

    SQLite keeps no histograms, so for a range on an indexed column it walks the index
    even when the range holds most of the table, which is about twice as slow as reading
    the table. When ``start..end`` covers more than a quarter of the stored span of
    ``col`` (two index lookups), the column is written ``+col`` there, which makes SQLite
    scan the table instead. PostgreSQL's planner decides that by itself.
    """
    target = col
    if _is_sqlite(session):
        lo = session.execute(select(func.min(col))).scalar()
        hi = session.execute(select(func.max(col))).scalar()
        if lo is not None and hi is not None and hi > lo:
            covered = min(end, hi) - max(start, lo)
            if covered.total_seconds() > WIDE_RANGE * (hi - lo).total_seconds():
                target = UnaryExpression(col.expression, operator=custom_op("+"), type_=col.type)
    return and_(target >= start, target < end)


def millis_between(session: Session, end: Column, start: Column) -> ColumnElement[Any]:
    """Whole milliseconds from ``start`` to ``end`` (both UTC timestamps), as an integer."""
    if _is_sqlite(session):
        return cast(func.round((func.julianday(end) - func.julianday(start)) * 86400000.0), Integer)
    return cast(func.round(func.extract("epoch", end - start) * 1000), Integer)


def greatest(session: Session, a: Column, b: Column) -> ColumnElement[Any]:
    return func.max(a, b) if _is_sqlite(session) else func.greatest(a, b)


def least(session: Session, a: Column, b: Column) -> ColumnElement[Any]:
    return func.min(a, b) if _is_sqlite(session) else func.least(a, b)


def day_table(period: Period, name: str = "days"):
    """A CTE with one row per local day of the period: ``day, week, month`` (first days of
    its buckets) and ``t0``/``t1``, the day's UTC start (inclusive) and end (exclusive)."""
    tz = period.tz
    rows = []
    for day in period.days():
        rows.append(
            (
                day,
                bucket_of(day, "week"),
                bucket_of(day, "month"),
                local_midnight(day, tz),
                local_midnight(day + dt.timedelta(days=1), tz),
            )
        )
    return (
        values(
            column("day", Date),
            column("week", Date),
            column("month", Date),
            column("t0", m.UTCDateTime()),
            column("t1", m.UTCDateTime()),
            name=name,
        )
        .data(rows)
        .cte(name)
    )


# ------------------------------------------------------------------- filters


def check_group_by(group_by: Sequence[str] | str, allowed: Sequence[str]) -> tuple[str, ...]:
    """Validate grouping keys: at most one period unit, each key known to this report."""
    keys = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    for key in keys:
        if key not in allowed:
            raise ReportError(f"cannot group by {key!r} here; choose from {', '.join(allowed)}")
    if len([k for k in keys if k in PERIOD_UNITS]) > 1:
        raise ReportError("group by at most one of day, week, month")
    if len(set(keys)) != len(keys):
        raise ReportError("a grouping key is given twice")
    # periods first: rows read as "per day, per line"
    return tuple(sorted(keys, key=lambda k: (k not in PERIOD_UNITS, keys.index(k))))


def _resolve(session: Session, names: Iterable[str] | None, col, id_col, what: str) -> list[int]:
    if not names:
        return []
    names = [n.strip() for n in names]
    found: dict[str, int] = dict(session.execute(select(col, id_col).where(col.in_(names))).all())
    missing = [n for n in names if n not in found]
    if missing:
        raise ReportError(f"no {what} {', '.join(repr(n) for n in missing)}")
    return [found[n] for n in names]


def line_ids(session: Session, dids: Iterable[str] | None) -> list[int]:
    return _resolve(session, dids, m.Line.did, m.Line.id, "line with DID")


def campaign_ids(session: Session, names: Iterable[str] | None) -> list[int]:
    return _resolve(session, names, m.Campaign.name, m.Campaign.id, "campaign named")


def agent_ids(session: Session, usernames: Iterable[str] | None) -> list[int]:
    return _resolve(session, usernames, m.Agent.username, m.Agent.id, "agent named")


# -------------------------------------------------------------- group names

# Each non-period grouping key: its id column in the rows, and the name columns filled in
# after the aggregation from the (small) configuration table, so the big GROUP BY runs on
# ids only.
NAMES: dict[str, tuple[Any, list[tuple[str, Any]]]] = {
    "line": (m.Line, [("line", m.Line.did), ("line_name", m.Line.name)]),
    "agent": (m.Agent, [("agent", m.Agent.username)]),
    "campaign": (m.Campaign, [("campaign", m.Campaign.name)]),
    "category": (m.EnquiryCategory, [("category", m.EnquiryCategory.name)]),
    "topic": (m.EnquiryTopic, [("topic", m.EnquiryTopic.name)]),
}


def key_columns(keys: Sequence[str]) -> list[str]:
    """Output columns for grouping keys: ``day`` / ``line_id, line, line_name`` / ..."""
    out: list[str] = []
    for k in keys:
        if k in PERIOD_UNITS:
            out.append(k)
        else:
            out += [f"{k}_id", *(label for label, _ in NAMES[k][1])]
    return out


def add_names(session: Session, keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Fill in the name columns of ``rows`` (which hold ``<key>_id``) with one small query per
    key; a deleted or missing id gives None."""
    for k in keys:
        if k in PERIOD_UNITS:
            continue
        model, cols = NAMES[k]
        ids = {row[f"{k}_id"] for row in rows} - {None}
        found: dict[Any, Any] = {}
        if ids:
            stmt = select(model.id, *(c for _, c in cols)).where(model.id.in_(ids))
            found = {r[0]: r[1:] for r in session.execute(stmt)}
        for row in rows:
            values = found.get(row[f"{k}_id"], (None,) * len(cols))
            for (label, _), value in zip(cols, values, strict=True):
                row[label] = value


def sort_rows(keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Order rows by period, then by each key's first name column (None last), then id."""

    def sort_key(row: dict[str, Any]) -> tuple:
        out: list[Any] = []
        for k in keys:
            if k in PERIOD_UNITS:
                out.append(row[k] or dt.date.min)
            else:
                name = row.get(NAMES[k][1][0][0])
                out += [name is None, name or "", row.get(f"{k}_id") or 0]
        return tuple(out)

    rows.sort(key=sort_key)


# -------------------------------------------------------------------- output


def ratio(part: Any, whole: Any) -> float | None:
    """``part / whole`` rounded to 4 decimals; None when ``whole`` is 0."""
    if not whole:
        return None
    return round(float(part or 0) / float(whole), RATIO_DIGITS)


def seconds(millis: Any) -> float | None:
    """Milliseconds (int, float or Decimal from an aggregate) to seconds, 3 decimals."""
    if millis is None:
        return None
    if isinstance(millis, Decimal):
        millis = float(millis)
    return round(float(millis) / 1000.0, SECONDS_DIGITS)


def as_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


@dataclass
class Report:
    """A report's result: column names in display order and one dict per row."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # period, zone, options used

    def to_csv(self) -> str:
        """Formula-like cells quote-prefixed (the OWASP rule, :mod:`asterisk_cube.core.text`)."""
        return csv_text(self.columns, self.rows)

    def to_json(self) -> str:
        return json.dumps(
            [{c: _json_cell(row.get(c)) for c in self.columns} for row in self.rows], indent=2
        )


def _json_cell(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
