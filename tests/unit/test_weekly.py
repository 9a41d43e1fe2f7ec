import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cube.core.weekly import WeeklyInterval, WeeklySpecError, format_weekly, parse_weekly


def test_parse_ranges_and_single_days():
    ivs = parse_weekly("Mon-Fri 08:00-16:00, sat 10:00-14:00")
    assert len(ivs) == 6
    assert ivs[0] == WeeklyInterval(0, dt.time(8), dt.time(16))
    assert ivs[-1] == WeeklyInterval(5, dt.time(10), dt.time(14))


def test_split_day_and_plus_syntax():
    ivs = parse_weekly("mon+wed 08:00-11:30, mon+wed 12:00-16:00")
    assert [(i.weekday, i.starts.hour) for i in ivs] == [(0, 8), (0, 12), (2, 8), (2, 12)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mon-fry 08:00-16:00", "unknown day 'fry'"),
        ("fri-mon 08:00-16:00", "backwards"),
        ("mon 16:00-08:00", "end is not after start"),
        ("mon 25:00-26:00", "bad time"),
        ("monday all day", "cannot read"),
        ("mon 08:00-12:00, mon 11:00-13:00", "overlapping"),
        ("  ", "empty"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(WeeklySpecError, match=message):
        parse_weekly(spec)


times = st.integers(0, 23 * 4).map(lambda q: dt.time(q // 4, (q % 4) * 15))


@given(st.lists(st.tuples(st.integers(0, 6), times, st.integers(1, 8)), min_size=1, max_size=7))
def test_format_is_the_inverse_of_parse(items):
    ivs = set()
    used = set()
    for day, start, quarters in items:
        if day in used:
            continue
        minutes = start.hour * 60 + start.minute + quarters * 15
        if minutes >= 24 * 60:
            continue
        used.add(day)
        ivs.add(WeeklyInterval(day, start, dt.time(minutes // 60, minutes % 60)))
    if not ivs:
        return
    assert parse_weekly(format_weekly(sorted(ivs))) == sorted(ivs)


# ------------------------------------------------------------------ 24:00


def test_24_00_ends_the_day_at_midnight_not_a_second_before():
    [iv] = parse_weekly("mon 00:00-24:00")
    assert (iv.starts, iv.ends) == (dt.time(0), dt.time(0))  # not 23:59:59
    assert format_weekly([iv]) == "mon 00:00-24:00"
    assert parse_weekly("mon-sun 08:00-24:00")[0].ends == dt.time(0)
    assert format_weekly(parse_weekly("mon-sun 08:00-24:00")) == "mon-sun 08:00-24:00"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mon 24:00-24:00", "24:00 can only end an interval"),
        ("mon 24:00-08:00", "24:00 can only end an interval"),
        ("mon 20:00-24:00, mon 22:00-23:00", "overlapping"),
    ],
)
def test_24_00_only_ends_an_interval(spec, message):
    with pytest.raises(WeeklySpecError, match=message):
        parse_weekly(spec)


def test_a_24_7_schedule_is_open_in_the_last_second_of_every_day():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from asterisk_cube.core.hours import Interval, Schedule, is_open

    week: dict[int, list[Interval]] = {}
    for iv in parse_weekly("mon-sun 00:00-24:00"):
        week.setdefault(iv.weekday, []).append(Interval(iv.starts, iv.ends))
    schedule = Schedule.build("Europe/Oslo", week)
    oslo = ZoneInfo("Europe/Oslo")
    for day in range(7, 14):  # Monday 7 December 2026 to Sunday
        assert is_open(schedule, datetime(2026, 12, day, 23, 59, 59, 500000, oslo))
