"""Weekly time specs as admins type them: ``"mon-fri 08:00-16:00, sat 10:00-14:00"``.

Used for campaign calling windows and client opening hours. Pure parsing and
formatting; the meaning (open now? may we dial now?) lives in hours/contacts.

``24:00`` ends an interval at the end of the day: it is stored as ``00:00``, which
:class:`asterisk_cube.core.hours.Interval` reads as the next midnight (an end at or before
the start runs into the next day), so ``mon-sun 00:00-24:00`` is open around the clock.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(
    r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?(?:\+[a-z]{3}(?:-[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$"
)


class WeeklySpecError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class WeeklyInterval:
    weekday: int  # 0 = Monday
    starts: dt.time
    ends: dt.time


MIDNIGHT = dt.time(0)  # as an end: 24:00, the end of the day (hours.Interval reads it so)


def _time(text: str, part: str, end: bool = False) -> dt.time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        if not end:
            raise WeeklySpecError(f"24:00 can only end an interval, in {part!r}")
        return MIDNIGHT
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise WeeklySpecError(f"bad time {text!r} in {part!r}")
    return dt.time(hours, minutes)


def end_minutes(end: dt.time) -> int:
    """Minutes after the day's start at which an interval ends: 00:00 as an end is 24:00."""
    return end.hour * 60 + end.minute if end != MIDNIGHT else 24 * 60


def _start_minutes(start: dt.time) -> int:
    return start.hour * 60 + start.minute


def _days(text: str, part: str) -> list[int]:
    out: list[int] = []
    for chunk in text.split("+"):
        first, _, last = chunk.partition("-")
        for name in (first, last or first):
            if name not in DAYS:
                raise WeeklySpecError(f"unknown day {name!r} in {part!r} (use {', '.join(DAYS)})")
        a, b = DAYS.index(first), DAYS.index(last or first)
        if b < a:
            raise WeeklySpecError(f"day range runs backwards in {part!r}")
        out.extend(range(a, b + 1))
    return out


def parse_weekly(spec: str) -> list[WeeklyInterval]:
    """Parse a comma-separated spec; raise WeeklySpecError naming the bad part."""
    intervals: list[WeeklyInterval] = []
    for raw in spec.split(","):
        part = " ".join(raw.strip().lower().split())
        if not part:
            continue
        m = _PART.match(part)
        if not m:
            raise WeeklySpecError(
                f"cannot read {raw.strip()!r}: expected e.g. 'mon-fri 08:00-16:00'"
            )
        start, end = _time(m["start"], part), _time(m["end"], part, end=True)
        if end_minutes(end) <= _start_minutes(start):
            raise WeeklySpecError(f"end is not after start in {part!r}")
        intervals.extend(WeeklyInterval(d, start, end) for d in _days(m["days"], part))
    if not intervals:
        raise WeeklySpecError("empty weekly spec")
    intervals.sort()
    for a, b in itertools.pairwise(intervals):
        if a.weekday == b.weekday and _start_minutes(b.starts) < end_minutes(a.ends):
            raise WeeklySpecError(f"overlapping intervals on {DAYS[a.weekday]}")
    return intervals


def format_weekly(intervals: list[WeeklyInterval]) -> str:
    """Inverse of parse_weekly (days with equal hours grouped into ranges)."""
    by_hours: dict[tuple[dt.time, dt.time], list[int]] = {}
    for iv in sorted(intervals):
        by_hours.setdefault((iv.starts, iv.ends), []).append(iv.weekday)
    parts = []
    for (start, end), days in sorted(by_hours.items(), key=lambda kv: (kv[1][0], kv[0])):
        runs: list[list[int]] = []
        for d in days:
            if runs and runs[-1][-1] == d - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        names = "+".join(DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" for r in runs)
        parts.append(f"{names} {start:%H:%M}-{_end_text(end)}")
    return ", ".join(parts)


def _end_text(end: dt.time) -> str:
    return "24:00" if end == MIDNIGHT else f"{end:%H:%M}"
