from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.hours import (
    DayKind,
    DayOverride,
    HoursStatus,
    HoursWords,
    Interval,
    Schedule,
    format_summary,
    is_open,
    parse_time,
    public_holidays,
    status_at,
    summarize,
    wall_to_aware,
)

OSLO = ZoneInfo("Europe/Oslo")
WEEKDAYS = {d: ["08:00-16:00"] for d in range(5)}


def oslo(*args):
    return datetime(*args, tzinfo=OSLO)


def office(**kw):
    return Schedule.build("Europe/Oslo", kw.pop("weekly", WEEKDAYS), **kw)


# ------------------------------------------------------------------ parsing


def test_parse_time_and_interval():
    assert parse_time("8:00") == time(8)
    assert parse_time("08.30") == time(8, 30)
    assert parse_time("24:00") == time(0)
    assert Interval.parse("08:00 – 16:00") == Interval(time(8), time(16))
    assert Interval.parse("22:00-06:00").spans_midnight
    assert not Interval.parse("08:00-16:00").spans_midnight
    for bad in ("8", "25:00", "08:60", "x"):
        with pytest.raises(ValueError):
            parse_time(bad)
    for bad in ("08:00", "a-b", "08:00-16:00-18:00"):
        with pytest.raises(ValueError):
            Interval.parse(bad)


def test_bad_schedule_input():
    with pytest.raises(ValueError):
        Schedule.build("Europe/Oslo", {7: ["08:00-16:00"]})
    with pytest.raises(Exception):  # noqa: B017 - ZoneInfoNotFoundError or ValueError
        Schedule.build("Mars/Olympus", {})
    with pytest.raises(ValueError):
        Schedule("UTC", ((),) * 6)


def test_naive_time_is_refused():
    with pytest.raises(ValueError):
        status_at(office(), datetime(2025, 6, 2, 9, 0))


# ---------------------------------------------------------------- weekly


def test_open_inside_weekday_hours_with_closing_time():
    v = status_at(office(), oslo(2025, 6, 2, 9, 30))  # Monday
    assert v.status is HoursStatus.OPEN and v.is_open
    assert v.closes_at == oslo(2025, 6, 2, 16, 0)
    assert v.next_open is None


def test_boundaries_are_half_open():
    assert is_open(office(), oslo(2025, 6, 2, 8, 0))
    assert not is_open(office(), oslo(2025, 6, 2, 16, 0))
    assert not is_open(office(), oslo(2025, 6, 2, 7, 59))


def test_closed_evening_opens_next_morning():
    v = status_at(office(), oslo(2025, 6, 2, 18, 0))
    assert v.status is HoursStatus.CLOSED
    assert v.next_open == oslo(2025, 6, 3, 8, 0)


def test_weekend_opens_monday():
    v = status_at(office(), oslo(2025, 6, 7, 12, 0))  # Saturday
    assert v.status is HoursStatus.CLOSED
    assert v.next_open == oslo(2025, 6, 9, 8, 0)


def test_several_intervals_a_day():
    s = office(weekly={0: ["08:00-11:30", "12:00-16:00"]})
    v = status_at(s, oslo(2025, 6, 2, 11, 45))
    assert v.status is HoursStatus.CLOSED and v.next_open == oslo(2025, 6, 2, 12, 0)
    assert status_at(s, oslo(2025, 6, 2, 10, 0)).closes_at == oslo(2025, 6, 2, 11, 30)


def test_back_to_back_intervals_merge_for_closing_time():
    s = office(weekly={0: ["08:00-12:00", "12:00-16:00"]})
    assert status_at(s, oslo(2025, 6, 2, 9, 0)).closes_at == oslo(2025, 6, 2, 16, 0)


def test_always_open_has_no_closing_time():
    s = Schedule.build("Europe/Oslo", {d: ["00:00-00:00"] for d in range(7)})
    v = status_at(s, oslo(2025, 6, 2, 3, 0))
    assert v.is_open and v.closes_at is None


def test_never_open_has_no_next_opening():
    v = status_at(Schedule.build("Europe/Oslo"), oslo(2025, 6, 2, 3, 0))
    assert v.status is HoursStatus.CLOSED and v.next_open is None


# ----------------------------------------------------------- midnight spanning


def test_midnight_spanning_interval():
    s = office(weekly={4: ["22:00-02:00"]})  # Friday night
    assert is_open(s, oslo(2025, 6, 6, 23, 0))
    v = status_at(s, oslo(2025, 6, 7, 1, 0))  # Saturday 01:00
    assert v.is_open and v.closes_at == oslo(2025, 6, 7, 2, 0)
    assert not is_open(s, oslo(2025, 6, 7, 2, 0))
    assert not is_open(s, oslo(2025, 6, 6, 1, 0))  # Friday early: Thursday had no night


def test_spill_over_into_a_holiday_stays_open():
    s = office(weekly={4: ["22:00-02:00"]}, public_holidays={date(2025, 6, 7): "Test Day"})
    assert is_open(s, oslo(2025, 6, 7, 1, 0))
    v = status_at(s, oslo(2025, 6, 7, 3, 0))
    assert v.status is HoursStatus.HOLIDAY and v.holiday_name == "Test Day"


def test_night_shift_chain_across_days():
    s = office(weekly={d: ["18:00-08:00"] for d in range(7)})
    v = status_at(s, oslo(2025, 6, 2, 3, 0))
    assert v.is_open and v.closes_at == oslo(2025, 6, 2, 8, 0)


# ------------------------------------------------------------------ holidays


def test_public_holiday_closes_a_weekday():
    s = office(public_holidays={date(2025, 5, 29): "Kristi himmelfartsdag"})
    v = status_at(s, oslo(2025, 5, 29, 10, 0))  # Thursday
    assert v.status is HoursStatus.HOLIDAY
    assert v.holiday_name == "Kristi himmelfartsdag"
    assert v.day_kind is DayKind.PUBLIC_HOLIDAY
    assert v.next_open == oslo(2025, 5, 30, 8, 0)


def test_client_holiday_and_special_days():
    s = office(
        overrides=[
            DayOverride(date(2025, 6, 2), name="Company trip", holiday=True),
            DayOverride(date(2025, 6, 3), (Interval.parse("10:00-12:00"),), "Short day"),
            DayOverride(date(2025, 6, 4), name="Closed for moving"),
        ]
    )
    v = status_at(s, oslo(2025, 6, 2, 9, 0))
    assert v.status is HoursStatus.HOLIDAY and v.holiday_name == "Company trip"
    assert v.next_open == oslo(2025, 6, 3, 10, 0)
    assert status_at(s, oslo(2025, 6, 3, 11, 0)).closes_at == oslo(2025, 6, 3, 12, 0)
    v = status_at(s, oslo(2025, 6, 4, 9, 0))
    assert v.status is HoursStatus.CLOSED and v.day_kind is DayKind.SPECIAL
    assert v.next_open == oslo(2025, 6, 5, 8, 0)


def test_special_day_overrides_public_holiday():
    s = office(
        public_holidays={date(2025, 12, 24): "Julaften"},
        overrides=[DayOverride(date(2025, 12, 24), (Interval.parse("09:00-12:00"),), "Julaften")],
    )
    assert is_open(s, oslo(2025, 12, 24, 10, 0))
    assert status_at(s, oslo(2025, 12, 24, 13, 0)).status is HoursStatus.CLOSED


def test_overrides_for_one_day_merge():
    s = office(
        overrides=[
            DayOverride(date(2025, 6, 3), (Interval.parse("13:00-15:00"),)),
            DayOverride(date(2025, 6, 3), (Interval.parse("09:00-11:00"),)),
        ]
    )
    assert s.plan(date(2025, 6, 3)).intervals == (
        Interval.parse("09:00-11:00"),
        Interval.parse("13:00-15:00"),
    )


def test_public_holidays_helper():
    no = public_holidays("no", [2025], language="no")
    assert no[date(2025, 5, 17)] == "Grunnlovsdag"
    assert date(2025, 12, 25) in no
    assert date(2025, 6, 6) in public_holidays("SE", [2025])
    assert date(2025, 1, 7) in public_holidays("RS", [2025])
    with pytest.raises(ValueError):
        public_holidays("XX", [2025])


# ----------------------------------------------------------------------- DST


def test_dst_spring_forward_business_hours():
    # 2025-03-30: Oslo jumps 02:00 CET -> 03:00 CEST. Monday 31 March opens 08:00 CEST = 06:00Z.
    s = office()
    v = status_at(s, datetime(2025, 3, 29, 12, 0, tzinfo=UTC))
    assert v.next_open == oslo(2025, 3, 31, 8, 0)
    assert v.next_open.astimezone(UTC) == datetime(2025, 3, 31, 6, 0, tzinfo=UTC)
    assert not is_open(s, datetime(2025, 3, 31, 5, 59, tzinfo=UTC))
    assert is_open(s, datetime(2025, 3, 31, 6, 0, tzinfo=UTC))
    # the Friday before was still winter time: 08:00 CET = 07:00Z
    assert not is_open(s, datetime(2025, 3, 28, 6, 30, tzinfo=UTC))
    assert is_open(s, datetime(2025, 3, 28, 7, 0, tzinfo=UTC))


def test_dst_fall_back_business_hours():
    # 2025-10-26: Oslo goes 03:00 CEST -> 02:00 CET. Monday 27 Oct opens 08:00 CET = 07:00Z.
    s = office()
    assert not is_open(s, datetime(2025, 10, 27, 6, 30, tzinfo=UTC))
    assert is_open(s, datetime(2025, 10, 27, 7, 0, tzinfo=UTC))
    v = status_at(s, datetime(2025, 10, 27, 7, 0, tzinfo=UTC))
    assert v.closes_at.astimezone(UTC) == datetime(2025, 10, 27, 15, 0, tzinfo=UTC)


def test_night_shift_across_spring_forward_is_shorter():
    s = office(weekly={5: ["22:00-06:00"]})  # Saturday night into DST Sunday
    v = status_at(s, oslo(2025, 3, 29, 23, 0))
    assert v.closes_at == oslo(2025, 3, 30, 6, 0)
    assert v.closes_at.astimezone(UTC) - v.local_time.astimezone(UTC) == timedelta(hours=6)
    assert is_open(s, datetime(2025, 3, 30, 1, 30, tzinfo=UTC))  # 03:30 CEST


def test_night_shift_across_fall_back_is_longer():
    s = office(weekly={5: ["22:00-06:00"]})  # Saturday night into Sunday 26 Oct
    v = status_at(s, oslo(2025, 10, 25, 22, 0))
    assert v.closes_at.astimezone(UTC) - v.local_time.astimezone(UTC) == timedelta(hours=9)
    # both occurrences of 02:30 are inside the night
    assert is_open(s, datetime(2025, 10, 26, 0, 30, tzinfo=UTC))
    assert is_open(s, datetime(2025, 10, 26, 1, 30, tzinfo=UTC))


def test_opening_inside_the_spring_gap_maps_to_the_jump():
    s = office(weekly={6: ["02:30-05:00"]})
    v = status_at(s, datetime(2025, 3, 30, 0, 30, tzinfo=UTC))  # 01:30 CET
    assert v.next_open == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert v.next_open.utcoffset() == timedelta(hours=2)
    assert is_open(s, datetime(2025, 3, 30, 1, 0, tzinfo=UTC))


def test_opening_in_the_repeated_hour_uses_the_first():
    s = office(weekly={6: ["02:30-04:00"]})
    v = status_at(s, datetime(2025, 10, 26, 0, 0, tzinfo=UTC))  # 02:00 CEST
    assert v.next_open.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    # already in the second 02:00 hour (CET): the second 02:30 is next, never a past time
    v = status_at(s, datetime(2025, 10, 26, 1, 0, tzinfo=UTC))
    assert v.next_open.astimezone(UTC) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)


def test_closing_in_the_repeated_hour_is_never_in_the_past():
    s = office(weekly={5: ["22:00-02:30"]})  # Saturday night into 26 Oct
    v = status_at(s, datetime(2025, 10, 26, 1, 10, tzinfo=UTC))  # 02:10 CET, second pass
    assert v.is_open
    assert v.closes_at.astimezone(UTC) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)


def test_wall_to_aware():
    assert wall_to_aware(datetime(2025, 6, 1, 12), OSLO) == oslo(2025, 6, 1, 12)
    gap = wall_to_aware(datetime(2025, 3, 30, 2, 15), OSLO)
    assert gap.astimezone(UTC) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    rep = wall_to_aware(datetime(2025, 10, 26, 2, 15), OSLO)
    assert rep.astimezone(UTC) == datetime(2025, 10, 26, 0, 15, tzinfo=UTC)


# ---------------------------------------------------------------------- zones


def test_same_instant_in_different_zones():
    instant = datetime(2025, 6, 2, 13, 0, tzinfo=UTC)  # 15:00 Oslo, 09:00 New York
    weekly = {d: ["08:00-10:00"] for d in range(5)}
    assert not is_open(Schedule.build("Europe/Oslo", weekly), instant)
    v = status_at(Schedule.build("America/New_York", weekly), instant)
    assert v.is_open and v.local_time.hour == 9
    assert v.closes_at == datetime(2025, 6, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))


def test_local_date_decides_the_holiday():
    s = Schedule.build(
        "Asia/Tokyo",
        {d: ["08:00-16:00"] for d in range(7)},
        public_holidays={date(2025, 6, 3): "X"},
    )
    # 2025-06-02 23:30Z is already 3 June 08:30 in Tokyo
    assert status_at(s, datetime(2025, 6, 2, 23, 30, tzinfo=UTC)).status is HoursStatus.HOLIDAY


# --------------------------------------------------------------------- summary


def test_summary_groups_days_and_lists_upcoming_exceptions():
    s = office(
        weekly={**WEEKDAYS, 5: ["10:00-14:00"]},
        public_holidays={date(2025, 5, 29): "Kristi himmelfartsdag", date(2025, 6, 1): "Sunday X"},
        overrides=[DayOverride(date(2025, 5, 30), (Interval.parse("08:00-12:00"),))],
    )
    summary = summarize(s, date(2025, 5, 26))
    assert [(w.first, w.last) for w in summary.week] == [(0, 4), (5, 5), (6, 6)]
    assert [p.day for p in summary.upcoming] == [date(2025, 5, 29), date(2025, 5, 30)]
    text = format_summary(summary)
    assert text == (
        "Mon–Fri 08:00–16:00; Sat 10:00–14:00; Sun closed; "
        "29.05 closed (Kristi himmelfartsdag); 30.05 08:00–12:00"
    )
    nb = HoursWords(day_names=("man", "tir", "ons", "tor", "fre", "lør", "søn"), closed="stengt")
    assert format_summary(summary, nb).startswith(
        "man–fre 08:00–16:00; lør 10:00–14:00; søn stengt"
    )


def test_summary_several_intervals():
    s = office(weekly={0: ["08:00-11:30", "12:00-16:00"]})
    assert format_summary(summarize(s, date(2025, 6, 2))).startswith(
        "Mon 08:00–11:30, 12:00–16:00; Tue–Sun closed"
    )


# ------------------------------------------------------------------ properties

_times = st.integers(min_value=5 * 4, max_value=23 * 4).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def schedules(draw):
    weekly = {}
    for day in range(7):
        n = draw(st.integers(0, 2))
        weekly[day] = [Interval(draw(_times), draw(_times)) for _ in range(n)]
    holidays = draw(
        st.dictionaries(st.dates(date(2025, 1, 1), date(2025, 12, 31)), st.just("H"), max_size=5)
    )
    return Schedule.build("Europe/Oslo", weekly, public_holidays=holidays)


instants = st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(schedules(), instants)
def test_next_open_and_closes_at_are_consistent(schedule, now):
    v = status_at(schedule, now)
    minute = timedelta(minutes=1)
    if v.is_open:
        assert v.next_open is None
        if v.closes_at is not None:
            assert v.closes_at > now
            assert not is_open(schedule, v.closes_at)
            assert is_open(schedule, v.closes_at - minute)
    else:
        assert v.closes_at is None
        if v.next_open is not None:
            assert v.next_open > now
            assert is_open(schedule, v.next_open)
            if v.next_open - minute > now:
                assert not is_open(schedule, v.next_open - minute)
        if v.status is HoursStatus.HOLIDAY:
            assert v.holiday_name == "H"


_any_time = st.integers(min_value=0, max_value=24 * 4 - 1).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def utc_schedules(draw):
    weekly = {
        day: [Interval(draw(_any_time), draw(_any_time)) for _ in range(draw(st.integers(0, 3)))]
        for day in range(7)
    }
    return Schedule.build("UTC", weekly)


@settings(max_examples=300, deadline=None)
@given(utc_schedules(), instants)
def test_consistency_with_any_intervals_in_utc(schedule, now):
    v = status_at(schedule, now)
    if v.is_open and v.closes_at is not None:
        assert not is_open(schedule, v.closes_at)
    if not v.is_open and v.next_open is not None:
        assert is_open(schedule, v.next_open)
        assert not is_open(schedule, v.next_open - timedelta(minutes=1)) or (
            v.next_open - timedelta(minutes=1) <= now
        )


@pytest.mark.parametrize(
    ("country", "language", "day", "name"),
    [
        ("NO", "nb", date(2026, 12, 26), "Andre juledag"),  # our code for bokmål
        ("NO", None, date(2026, 12, 26), "Andre juledag"),  # the country's own language
        ("SE", "sv", date(2026, 12, 26), "Annandag jul"),
        ("SE", "nb", date(2026, 12, 26), "Annandag jul"),  # no bokmål table for SE: Swedish
        ("RS", "sr", date(2026, 4, 13), "Други дан Васкрса"),
        ("NO", "en", date(2026, 12, 26), "Second Day of Christmas"),
    ],
)
def test_public_holiday_names_are_localized(country, language, day, name):
    assert public_holidays(country, [2026], language=language)[day] == name


def test_a_norwegian_clients_holiday_is_named_in_norwegian():
    from asterisk_cube.db import models as m
    from asterisk_cube.services.client_config import client_schedule

    client = m.Client(name="Fjord AS", language="nb", holiday_country="NO", timezone="Europe/Oslo")
    verdict = status_at(client_schedule(client, (2026,)), oslo(2026, 12, 25, 10, 0))
    assert verdict.status is HoursStatus.HOLIDAY
    assert verdict.holiday_name == "Første juledag"  # was "Christmas Day"


def test_a_day_ending_at_midnight_is_shown_ending_at_24_00():
    around_the_clock = Schedule.build("Europe/Oslo", {d: ["00:00-00:00"] for d in range(7)})
    assert format_summary(summarize(around_the_clock, date(2026, 12, 7))) == "Mon–Sun 00:00–24:00"
    evenings = Schedule.build("Europe/Oslo", {0: ["18:00-00:00"], 1: ["22:00-02:00"]})
    assert format_summary(summarize(evenings, date(2026, 12, 7))).startswith(
        "Mon 18:00–24:00; Tue 22:00–02:00"
    )
