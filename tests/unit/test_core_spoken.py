"""When a Norwegian client opens again, as word prompts (core/spoken.py): examples as a phone
menu says them, calendar days across DST changes and zone boundaries, and a round trip:
whatever the function says, a listener recovers the exact wall-clock date and minute."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asterisk_cube.core.hours import Schedule, status_at
from asterisk_cube.core.spoken import (
    LANGUAGES,
    NB_MONTHS,
    NB_WEEKDAYS,
    NB_WORDS,
    next_open_words,
)

OSLO = ZoneInfo("Europe/Oslo")
# Monday 23 November 2026, 20:00 in Oslo (after closing).
MONDAY_EVENING = datetime(2026, 11, 23, 20, 0, tzinfo=OSLO)


def oslo(*args):
    return datetime(*args, tzinfo=OSLO)


def said(next_open, now=MONDAY_EVENING, language="nb"):
    return " ".join(n.removeprefix("words/") for n in next_open_words(next_open, now, language))


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize(
    ("next_open", "words"),
    [
        (oslo(2026, 11, 24, 8, 0), "i-morgen klokken 8"),  # i morgen klokken åtte
        (oslo(2026, 11, 24, 8, 30), "i-morgen klokken 8 30"),  # ... åtte tretti
        (oslo(2026, 11, 30, 8, 30), "mandag den h-30 november klokken 8 30"),  # a week ahead
        (oslo(2026, 11, 29, 8, 30), "sondag klokken 8 30"),  # six days: the weekday is enough
        (oslo(2026, 11, 25, 16, 5), "onsdag klokken 16 0 5"),  # seksten null fem
        (oslo(2026, 11, 25, 13, 0), "onsdag klokken 13"),  # 24-hour clock: tretten
        (oslo(2026, 11, 24, 1, 0), "i-morgen klokken 1"),  # klokken ett
        (oslo(2026, 11, 24, 0, 0), "i-morgen klokken 0 0"),  # klokken null null, not 3x null
        (oslo(2026, 11, 24, 0, 45), "i-morgen klokken 0 45"),  # null førti-fem
        (oslo(2026, 11, 23, 22, 0), "i-dag klokken 22"),  # opens later this evening
        (oslo(2026, 11, 23, 20, 0), "i-dag klokken 20"),  # opens this very minute
        (oslo(2027, 1, 4, 8, 0), "mandag den h-4 januar klokken 8"),  # after Christmas
        (oslo(2027, 11, 22, 8, 0), "mandag den h-22 november klokken 8"),  # almost a year
    ],
)
def test_norwegian_examples(next_open, words):
    assert said(next_open) == words


def test_a_sunday_night_caller_hears_monday_morning():
    assert (
        said(oslo(2026, 11, 30, 8, 30), now=oslo(2026, 11, 29, 23, 59)) == "i-morgen klokken 8 30"
    )
    assert said(oslo(2026, 11, 30, 8, 30), now=oslo(2026, 11, 30, 0, 0)) == "i-dag klokken 8 30"


def test_languages_without_word_prompts_say_nothing():
    assert {"nb"} == LANGUAGES
    for language in ("", "en", "sv", "NB"):
        assert next_open_words(oslo(2026, 11, 24, 8), MONDAY_EVENING, language) == ()


def test_names_are_relative_to_the_prompt_set():
    assert next_open_words(oslo(2026, 11, 24, 8), MONDAY_EVENING, "nb") == (
        "words/i-morgen",
        "words/klokken",
        "words/8",
    )


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="next_open must be timezone-aware"):
        next_open_words(datetime(2026, 11, 24, 8), MONDAY_EVENING, "nb")
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        next_open_words(oslo(2026, 11, 24, 8), datetime(2026, 11, 23, 20), "nb")
    with pytest.raises(ValueError, match="is before now"):
        next_open_words(oslo(2026, 11, 23, 19, 59), MONDAY_EVENING, "nb")


# ------------------------------------------------------------------ DST and zones


def test_days_are_calendar_days_across_the_spring_change():
    # 29 March 2026: 02:00 -> 03:00 in Oslo. Saturday 09:00 to Sunday 08:00 is 22 hours.
    assert said(oslo(2026, 3, 29, 8), now=oslo(2026, 3, 28, 9)) == "i-morgen klokken 8"
    # Saturday 00:30 to Sunday 23:30 is 46 hours, still "tomorrow".
    assert said(oslo(2026, 3, 29, 23, 30), now=oslo(2026, 3, 28, 0, 30)) == (
        "i-morgen klokken 23 30"
    )
    assert said(oslo(2026, 3, 30, 0, 0), now=oslo(2026, 3, 28, 0, 30)) == "mandag klokken 0 0"


def test_days_are_calendar_days_across_the_autumn_change():
    # 25 October 2026: 03:00 -> 02:00 in Oslo. Saturday 00:30 to Sunday 23:30 is 48 hours.
    assert said(oslo(2026, 10, 25, 23, 30), now=oslo(2026, 10, 24, 0, 30)) == (
        "i-morgen klokken 23 30"
    )
    # Sunday 00:10 to 23:50 is 24h40m, still "today".
    assert said(oslo(2026, 10, 25, 23, 50), now=oslo(2026, 10, 25, 0, 10)) == "i-dag klokken 23 50"


def test_an_opening_in_the_spring_gap_is_said_at_the_wall_clock_time_it_happens():
    # Sundays from 02:30: on the changeover Sunday 02:30 does not exist; hours opens at 03:00.
    schedule = Schedule.build("Europe/Oslo", {6: ["02:30-06:00"]})
    now = oslo(2026, 3, 28, 22, 0)
    verdict = status_at(schedule, now)
    assert said(verdict.next_open, now=verdict.local_time) == "i-morgen klokken 3"


def test_an_opening_in_the_repeated_autumn_hour():
    schedule = Schedule.build("Europe/Oslo", {6: ["02:45-03:30"]})
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 after the clocks went back
    verdict = status_at(schedule, second_0230)
    assert said(verdict.next_open, now=verdict.local_time) == "i-dag klokken 2 45"


@pytest.mark.parametrize(
    ("now", "words"),
    [
        (datetime(2026, 11, 23, 22, 59, tzinfo=UTC), "i-morgen klokken 8"),  # Monday 23:59 Oslo
        (datetime(2026, 11, 23, 23, 0, tzinfo=UTC), "i-dag klokken 8"),  # Tuesday 00:00 Oslo
        (datetime(2026, 11, 23, 23, 30, tzinfo=UTC), "i-dag klokken 8"),  # UTC still says Monday
    ],
)
def test_today_is_the_clients_today_not_utcs(now, words):
    assert said(oslo(2026, 11, 24, 8), now=now) == words


def test_far_zones():
    auckland, la = ZoneInfo("Pacific/Auckland"), ZoneInfo("America/Los_Angeles")
    # 11:00 UTC Monday is Tuesday 00:00 in Auckland: its 08:00 Tuesday is today.
    now = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert said(datetime(2026, 11, 24, 8, tzinfo=auckland), now=now) == "i-dag klokken 8"
    # 07:00 UTC Tuesday is still Monday 23:00 in Los Angeles: its Tuesday 08:00 is tomorrow.
    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert said(datetime(2026, 11, 24, 8, tzinfo=la), now=now) == "i-morgen klokken 8"


# ------------------------------------------------------------------ round trip

ZONES = [
    "Europe/Oslo",
    "Europe/Stockholm",
    "Atlantic/Reykjavik",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "UTC",
]
CHANGES = [  # UTC instants of DST changes, to search around
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # EU spring
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # EU autumn
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # US spring
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # US autumn
    datetime(2026, 4, 4, 14, tzinfo=UTC),  # New Zealand autumn
    datetime(2026, 9, 26, 14, tzinfo=UTC),  # New Zealand spring
]


def listen(names: tuple[str, ...], today: date) -> tuple[date, int, int]:
    """What a listener understands: the wall-clock date, hour and minute. Asserts the words
    are a sentence the prompt set can play and that nothing in it is ambiguous."""
    assert names and all(n.startswith("words/") for n in names)
    words = [n.removeprefix("words/") for n in names]
    assert set(words) <= NB_WORDS
    assert words.count("klokken") == 1
    split = words.index("klokken")
    day, clock = words[:split], words[split + 1 :]
    if day == ["i-dag"]:
        when = today
    elif day == ["i-morgen"]:
        when = today + timedelta(days=1)
    elif len(day) == 1:
        ahead = (NB_WEEKDAYS.index(day[0]) - today.weekday()) % 7
        assert 2 <= ahead <= 6, f"{day[0]} is not within the week"
        when = today + timedelta(days=ahead)
    else:
        weekday, den, ordinal, month = day
        assert den == "den" and ordinal.startswith("h-")
        day_of_month, month_number = int(ordinal[2:]), NB_MONTHS.index(month) + 1
        # No year is said: the first such date a week or more ahead on that weekday.
        candidates = []
        for year in range(today.year, today.year + 3):
            with contextlib.suppress(ValueError):  # 29 February
                candidates.append(date(year, month_number, day_of_month))
        when = next(
            d for d in candidates if (d - today).days >= 7 and NB_WEEKDAYS[d.weekday()] == weekday
        )
    hour, minute_words = int(clock[0]), clock[1:]
    assert 0 <= hour <= 23
    if not minute_words:
        assert hour != 0, "midnight is 'null null', never a bare 'null'"
        minute = 0
    elif minute_words == ["0"]:
        assert hour == 0, "only midnight is said with a single 'null' for the minutes"
        minute = 0
    elif minute_words[0] == "0":
        [_, digit] = minute_words
        minute = int(digit)
        assert 0 < minute < 10
    else:
        [number] = minute_words
        minute = int(number)
        assert 10 <= minute <= 59
    return when, hour, minute


instants = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda change, minutes: change + timedelta(minutes=minutes),
        st.sampled_from(CHANGES),
        st.integers(-3 * 1440, 3 * 1440),
    ),
)


@settings(max_examples=600, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    now=instants,
    ahead=st.one_of(st.integers(0, 3 * 1440), st.integers(0, 400 * 1440)),
)
@example(zone="Europe/Oslo", now=datetime(2026, 3, 28, 23, 30, tzinfo=UTC), ahead=8 * 60 + 30)
@example(zone="Europe/Oslo", now=datetime(2026, 10, 25, 0, 59, tzinfo=UTC), ahead=1)
def test_a_listener_recovers_the_wall_clock_opening(zone, now, ahead):
    tz = ZoneInfo(zone)
    opens = (now + timedelta(minutes=ahead)).replace(second=0, microsecond=0)  # whole minutes
    next_open = (opens if opens >= now else opens + timedelta(minutes=1)).astimezone(tz)
    today = now.astimezone(tz).date()
    heard = listen(next_open_words(next_open, now, "nb"), today)
    assert heard == (next_open.date(), next_open.hour, next_open.minute)
