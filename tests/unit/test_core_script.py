from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cube.core.adblock import AdblockConfig, AdblockReason, GlobalLists
from asterisk_cube.core.entry import EntryAction, decide_entry
from asterisk_cube.core.hours import HoursStatus, Schedule
from asterisk_cube.core.script import (
    CallbackCheck,
    ClientConfig,
    ClosedHandling,
    CurrentException,
    DayPart,
    DayPartWords,
    Employee,
    FaqEntry,
    Handling,
    HandlingKind,
    HandlingSource,
    Tone,
    active_exception,
    build_script,
    check_callback_number,
    day_part,
    fill_template,
    greeting_text,
)

OSLO = ZoneInfo("Europe/Oslo")
HOURS = Schedule.build(
    "Europe/Oslo",
    {d: ["08:00-16:00"] for d in range(5)},
    public_holidays={date(2025, 5, 29): "Kristi himmelfartsdag"},
)
FWD = Handling(HandlingKind.FORWARD, "+4722000001", "+4722000002")
NB = DayPartWords("God morgen", "God ettermiddag", "God kveld")


def oslo(*args):
    return datetime(*args, tzinfo=OSLO)


def client(**kw):
    base = dict(
        client_id=1,
        name="Fjord Regnskap AS",
        hours=HOURS,
        greeting="{greeting}, {client}, du snakker med {agent}.",
        greeting_informal="Hei, {client}!",
        work_instruction="Spør hvem de vil snakke med.",
        standard_handling=FWD,
        own_numbers=("+47 22 00 00 00", "+4722000*"),
    )
    base.update(kw)
    return ClientConfig(**base)


# ------------------------------------------------------------------- handling


def test_handling_validation():
    with pytest.raises(ValueError):
        Handling(HandlingKind.FORWARD)
    with pytest.raises(ValueError):
        Handling(ring_seconds=0)
    assert FWD.targets == ("+4722000001", "+4722000002")
    assert Handling(HandlingKind.FORWARD, "100").targets == ("100",)
    assert Handling(target1="100").targets == ()


# ------------------------------------------------------------------- greeting


@pytest.mark.parametrize(
    ("hhmm", "part"),
    [
        (time(5), DayPart.MORNING),
        (time(11, 59), DayPart.MORNING),
        (time(12), DayPart.AFTERNOON),
        (time(17, 59), DayPart.AFTERNOON),
        (time(18), DayPart.EVENING),
        (time(0, 30), DayPart.EVENING),
        (time(4, 59), DayPart.EVENING),
    ],
)
def test_day_part(hhmm, part):
    assert day_part(hhmm) is part


def test_formal_greeting_filled_in_client_time():
    script = build_script(client(), datetime(2025, 6, 2, 7, 0, tzinfo=UTC), NB, "Kari")
    assert script.greeting == "God morgen, Fjord Regnskap AS, du snakker med Kari."  # 09:00
    script = build_script(client(), datetime(2025, 6, 2, 11, 0, tzinfo=UTC), NB, "Kari")
    assert script.greeting.startswith("God ettermiddag")  # 13:00 in Oslo
    assert script.day_part is DayPart.AFTERNOON


def test_informal_wording_and_fallbacks():
    c = client(tone=Tone.INFORMAL)
    assert greeting_text(c, time(9), NB) == "Hei, Fjord Regnskap AS!"
    c = client(tone=Tone.INFORMAL, greeting_informal="")
    assert greeting_text(c, time(9), NB, "Ola").endswith("du snakker med Ola.")
    c = client(greeting="  ")
    assert greeting_text(c, time(19), NB) == "God kveld, Fjord Regnskap AS"


def test_template_leaves_unknown_braces_alone():
    assert fill_template("{greeting} {x} {} {{y}}", {"greeting": "Hi"}) == "Hi {x} {} {{y}}"


@given(st.text(max_size=60))
def test_any_admin_text_is_safe(template):
    out = fill_template(template, {"greeting": "G", "client": "C", "agent": "A"})
    assert isinstance(out, str)


# ------------------------------------------------------------------------ tone


def test_tone_flags_and_prompt_set():
    formal = build_script(client(), oslo(2025, 6, 2, 9, 0))
    assert formal.spell_names and formal.repeat_numbers
    assert formal.prompt_set is Tone.FORMAL and formal.tone is Tone.FORMAL
    informal = build_script(client(tone=Tone.INFORMAL), oslo(2025, 6, 2, 9, 0))
    assert not informal.spell_names and not informal.repeat_numbers
    assert informal.prompt_set is Tone.INFORMAL


def test_default_tone_is_formal():
    assert ClientConfig(1, "X", HOURS).tone is Tone.FORMAL


# ------------------------------------------------------------------ exceptions


def test_active_exception_period():
    e = CurrentException("Flytting", oslo(2025, 6, 2, 8, 0), oslo(2025, 6, 3, 8, 0))
    assert not e.active_at(oslo(2025, 6, 2, 7, 59))
    assert e.active_at(oslo(2025, 6, 2, 8, 0))
    assert not e.active_at(oslo(2025, 6, 3, 8, 0))
    assert CurrentException("x", oslo(2025, 1, 1, 0, 0)).active_at(oslo(2030, 1, 1, 0, 0))


def test_latest_started_exception_wins():
    a = CurrentException("a", oslo(2025, 6, 1, 0, 0), oslo(2025, 6, 30, 0, 0))
    b = CurrentException("b", oslo(2025, 6, 2, 0, 0), oslo(2025, 6, 3, 0, 0))
    assert active_exception([a, b], oslo(2025, 6, 2, 12, 0)) is b
    assert active_exception([a, b], oslo(2025, 6, 4, 12, 0)) is a
    assert active_exception([a, b], oslo(2025, 7, 1, 0, 0)) is None


def test_exception_overrides_standard_handling_while_active():
    note_all = CurrentException(
        "Alle er på kurs, ta beskjed.",
        oslo(2025, 6, 2, 0, 0),
        oslo(2025, 6, 3, 0, 0),
        Handling(),
    )
    c = client(exceptions=(note_all,), employees=(Employee(1, "Per", handling=FWD),))
    script = build_script(c, oslo(2025, 6, 2, 9, 0))
    assert script.exception is note_all
    assert script.handling.source is HandlingSource.EXCEPTION
    assert script.handling.handling.kind is HandlingKind.NOTE
    assert script.employees[0].handling.source is HandlingSource.EXCEPTION
    after = build_script(c, oslo(2025, 6, 3, 9, 0))
    assert after.exception is None
    assert after.handling.source is HandlingSource.STANDARD
    assert after.handling.handling is FWD


def test_information_only_exception_changes_no_handling():
    info = CurrentException("Ny adresse: Storgata 1", oslo(2025, 6, 1, 0, 0))
    script = build_script(client(exceptions=(info,)), oslo(2025, 6, 2, 9, 0))
    assert script.exception is info
    assert script.handling.source is HandlingSource.STANDARD


def test_exception_handling_applies_even_when_closed():
    fwd_mobile = Handling(HandlingKind.FORWARD, "+4791234567")
    e = CurrentException("Vakttelefon", oslo(2025, 6, 1, 0, 0), None, fwd_mobile)
    script = build_script(client(exceptions=(e,)), oslo(2025, 6, 2, 20, 0))
    assert not script.is_open
    assert script.handling.handling is fwd_mobile
    assert script.handling.announce_hours


# -------------------------------------------------------------------- hours


def test_closed_means_note_and_tell_the_hours():
    script = build_script(
        client(employees=(Employee(1, "Per", handling=FWD),)), oslo(2025, 6, 2, 17, 0)
    )
    assert script.hours.status is HoursStatus.CLOSED
    assert script.hours.next_open == oslo(2025, 6, 3, 8, 0)
    assert script.handling.source is HandlingSource.CLOSED
    assert script.handling.handling.kind is HandlingKind.NOTE
    assert script.handling.announce_hours
    assert script.employees[0].handling.source is HandlingSource.CLOSED


def test_holiday_is_shown_with_its_name():
    script = build_script(client(), oslo(2025, 5, 29, 10, 0))
    assert script.hours.status is HoursStatus.HOLIDAY
    assert script.hours.holiday_name == "Kristi himmelfartsdag"
    assert [p.day for p in script.hours_summary.upcoming] == [date(2025, 5, 29)]


# ---------------------------------------------------------- employees and FAQ


def test_employee_and_faq_handling():
    acct = Employee(1, "Regnskap", department="Regnskap", handling=Handling())
    sales = Employee(2, "Siri Salg", department="Salg", handling=FWD)
    faq = (
        FaqEntry(1, "Priser?", "Se nettsiden", position=2),
        FaqEntry(2, "Kjøpe?", "Sett over til salg", employee_id=2, position=1),
        FaqEntry(3, "Klage?", "Ta beskjed", handling=Handling(), position=3),
        FaqEntry(4, "Ukjent ansatt", "x", employee_id=99, position=4),
    )
    script = build_script(client(employees=(sales, acct), faq=faq), oslo(2025, 6, 2, 9, 0))
    assert [line.employee.name for line in script.employees] == ["Regnskap", "Siri Salg"]
    assert script.employees[0].handling.handling.kind is HandlingKind.NOTE
    assert script.employees[1].handling.handling is FWD
    assert script.employees[1].handling.source is HandlingSource.EMPLOYEE
    by_id = {line.entry.faq_id: line.handling for line in script.faq}
    assert [line.entry.faq_id for line in script.faq] == [2, 1, 3, 4]
    assert by_id[1].source is HandlingSource.STANDARD
    assert by_id[2].source is HandlingSource.EMPLOYEE and by_id[2].handling is FWD
    assert by_id[3].source is HandlingSource.FAQ
    assert by_id[4].source is HandlingSource.STANDARD


def test_script_carries_instruction_and_summary():
    script = build_script(client(), oslo(2025, 6, 2, 9, 0))
    assert script.work_instruction == "Spør hvem de vil snakke med."
    assert script.client_name == "Fjord Regnskap AS" and script.language == "nb"
    assert script.hours_summary.week[0].first == 0 and script.hours_summary.week[0].last == 4


# --------------------------------------------------------------- callback no.


@pytest.mark.parametrize("number", ["22000000", "+47 22 00 00 00", "0047 22000000", "22000999"])
def test_client_own_numbers_are_refused_as_callback(number):
    v = check_callback_number(number, client().own_numbers, "NO")
    assert v.result is CallbackCheck.OWN_NUMBER and not v.ok


def test_callback_number_ok_and_empty():
    v = check_callback_number("912 34 567", client().own_numbers, "NO")
    assert v.ok and v.number == "+4791234567"
    assert check_callback_number("", ["22000000"]).result is CallbackCheck.EMPTY
    assert check_callback_number("anonymous", ["22000000"]).result is CallbackCheck.EMPTY
    # an unreadable own-number entry does not block the agent
    assert check_callback_number("91234567", ["n/a", "22000000"]).ok


# ----------------------------------------------------------------- call entry

SHARED = GlobalLists.build(blocklist=["+4781*"])


def entry(caller, now, **kw):
    kw.setdefault("adblock", AdblockConfig.build(enabled=True))
    return decide_entry(caller, now, hours=HOURS, shared=SHARED, **kw)


def test_entry_queues_inside_hours():
    d = entry("91234567", oslo(2025, 6, 2, 9, 0))
    assert d.action is EntryAction.QUEUE
    assert d.channel_variables() == {
        "CUBE_ACTION": "queue",
        "CUBE_HOURS": "open",
        "CUBE_TONE": "formal",
        "CUBE_ADBLOCK": "allow",
        "CUBE_ADBLOCK_REASON": "no_match",
        "CUBE_NEXT_OPEN": "",
        "CUBE_NEXT_OPEN_EPOCH": "",
        "CUBE_TZ": "Europe/Oslo",
    }


def test_entry_rejects_adverts_and_anonymous_whatever_the_hours():
    for now in (oslo(2025, 6, 2, 9, 0), oslo(2025, 6, 2, 22, 0)):
        d = entry("81000000", now)
        assert d.action is EntryAction.REJECT
        assert d.adblock.reason is AdblockReason.GLOBAL_BLOCKLIST
        assert entry(None, now).action is EntryAction.REJECT
    assert entry("81000000", oslo(2025, 6, 2, 9, 0), adblock=AdblockConfig()).action is (
        EntryAction.QUEUE
    )


def test_entry_closed_handling():
    night = oslo(2025, 6, 2, 22, 0)
    d = entry("91234567", night, tone=Tone.INFORMAL)
    assert d.action is EntryAction.QUEUE  # agent takes a note
    v = d.channel_variables()
    assert v["CUBE_HOURS"] == "closed" and v["CUBE_TONE"] == "informal"
    assert v["CUBE_NEXT_OPEN"] == "2025-06-03T06:00:00+00:00"
    assert v["CUBE_NEXT_OPEN_EPOCH"] == str(int(datetime(2025, 6, 3, 6, tzinfo=UTC).timestamp()))
    d = entry("91234567", night, closed_handling=ClosedHandling.ANNOUNCE)
    assert d.action is EntryAction.ANNOUNCE
    d = entry("91234567", oslo(2025, 5, 29, 10, 0), closed_handling=ClosedHandling.ANNOUNCE)
    assert d.action is EntryAction.ANNOUNCE and d.channel_variables()["CUBE_HOURS"] == "holiday"


def test_entry_at_dst_change():
    # Monday after the spring change: 08:00 CEST = 06:00Z
    assert entry("91234567", datetime(2025, 3, 31, 5, 59, tzinfo=UTC)).hours.status is (
        HoursStatus.CLOSED
    )
    assert entry("91234567", datetime(2025, 3, 31, 6, 0, tzinfo=UTC)).hours.is_open
    assert entry(
        "1", datetime(2025, 3, 31, 6, 0, tzinfo=UTC) + timedelta(hours=8)
    ).hours.status is (HoursStatus.CLOSED)


@pytest.mark.parametrize("typed", ["12ab34", "9123 456x", "22 00 00 0o"])
def test_a_callback_number_with_letters_is_invalid_not_stripped(typed):
    verdict = check_callback_number(typed, ["22000000"], "NO")
    assert verdict.result is CallbackCheck.INVALID and verdict.number is None
