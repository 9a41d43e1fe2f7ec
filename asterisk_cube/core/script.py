"""The answering-service call script (F-S1..F-S5, F-S7, F-S9): what the agent sees and says
when it answers a call in a client's name.

:func:`build_script` turns a client's configuration and the current instant
into an :class:`AgentScript`: the greeting with the time-of-day word filled in
(formal or informal wording), the first work instruction, the active "current"
exception shown above everything and overriding standard handling, the
opening-hours verdict and summary, employees/departments and FAQ entries each
with the handling that applies *now*, and the tone flags.

Which handling applies (first match wins):

1. an active current exception that carries a handling (F-S3) — it overrides
   standard, employee, FAQ and closed handling alike; an exception without a
   handling is information only and changes nothing;
2. outside opening hours: take a note and tell the caller the hours (F-S8) —
   forwarding a call to an empty office helps nobody;
3. the chosen employee's own handling (F-S4), or the FAQ entry's (F-S5; an
   entry linked to an employee uses that employee's);
4. the client's standard handling (F-S2).

Texts are the client's own (greeting, instruction, FAQ); words that depend on
the UI language (the time-of-day greetings) come in as :class:`DayPartWords`
from the web layer, and everything else is returned as enum keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

from .hours import HoursSummary, HoursVerdict, Schedule, status_at, summarize
from .numbers import DEFAULT_REGION, InvalidNumber, NumberList, check_typed, normalize


class Tone(StrEnum):
    FORMAL = "formal"
    INFORMAL = "informal"


class HandlingKind(StrEnum):
    NOTE = "note"
    FORWARD = "forward"


class ClosedHandling(StrEnum):
    NOTE = "note"  # an agent answers, tells the hours and takes a note
    ANNOUNCE = "announce"  # the hours are played and the call ends, no agent


class HandlingSource(StrEnum):
    EXCEPTION = "exception"
    CLOSED = "closed"
    EMPLOYEE = "employee"
    FAQ = "faq"
    STANDARD = "standard"


class DayPart(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"


@dataclass(frozen=True)
class Handling:
    """Note, or forward to ``target1`` then ``target2`` (each tried for ``ring_seconds``)."""

    kind: HandlingKind = HandlingKind.NOTE
    target1: str | None = None
    target2: str | None = None
    ring_seconds: int = 20

    def __post_init__(self) -> None:
        if self.kind is HandlingKind.FORWARD and not self.target1:
            raise ValueError("forward handling needs a first target")
        if self.ring_seconds <= 0:
            raise ValueError("ring_seconds must be positive")

    @property
    def targets(self) -> tuple[str, ...]:
        if self.kind is not HandlingKind.FORWARD:
            return ()
        return tuple(t for t in (self.target1, self.target2) if t)


NOTE = Handling()


@dataclass(frozen=True)
class CurrentException:
    """F-S3: an instruction for a period (``ends_at`` None: until removed)."""

    instruction: str
    starts_at: datetime
    ends_at: datetime | None = None
    handling: Handling | None = None
    exception_id: int | None = None

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


@dataclass(frozen=True)
class Employee:
    employee_id: int
    name: str
    department: str = ""
    title: str = ""
    handling: Handling = NOTE
    info: str = ""


@dataclass(frozen=True)
class FaqEntry:
    faq_id: int
    question: str
    answer: str
    handling: Handling | None = None
    employee_id: int | None = None
    position: int = 0


@dataclass(frozen=True)
class ClientConfig:
    """What the script needs from one client's configuration."""

    client_id: int
    name: str
    hours: Schedule
    tone: Tone = Tone.FORMAL
    greeting: str = ""  # formal wording, may use {greeting} {client} {agent}
    greeting_informal: str = ""  # informal wording; empty: the formal one
    work_instruction: str = ""
    standard_handling: Handling = NOTE
    closed_handling: ClosedHandling = ClosedHandling.NOTE
    exceptions: tuple[CurrentException, ...] = ()
    employees: tuple[Employee, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    own_numbers: tuple[str, ...] = ()  # never accepted as a callback number (F-S9)
    region: str = DEFAULT_REGION
    language: str = "nb"


# ------------------------------------------------------------------- greeting


@dataclass(frozen=True)
class DayPartWords:
    """The time-of-day greetings in the client's language and tone (from the web layer)."""

    morning: str = "Good morning"
    afternoon: str = "Good afternoon"
    evening: str = "Good evening"

    def word(self, part: DayPart) -> str:
        return {
            DayPart.MORNING: self.morning,
            DayPart.AFTERNOON: self.afternoon,
            DayPart.EVENING: self.evening,
        }[part]


MORNING_FROM = time(5)
AFTERNOON_FROM = time(12)
EVENING_FROM = time(18)


def day_part(local: time) -> DayPart:
    """Morning 05:00-11:59, afternoon 12:00-17:59, evening 18:00-04:59 (local time)."""
    if MORNING_FROM <= local < AFTERNOON_FROM:
        return DayPart.MORNING
    if AFTERNOON_FROM <= local < EVENING_FROM:
        return DayPart.AFTERNOON
    return DayPart.EVENING


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` for known names only; any other braces stay as written, so an
    admin's text can never break the script."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def greeting_text(
    client: ClientConfig, local_time: time, words: DayPartWords, agent_name: str = ""
) -> str:
    """The greeting to say, in the client's tone, with ``{greeting}`` (time-of-day word),
    ``{client}`` and ``{agent}`` filled in. With no configured text: ``"{greeting}, {client}"``."""
    template = client.greeting
    if client.tone is Tone.INFORMAL and client.greeting_informal:
        template = client.greeting_informal
    if not template.strip():
        template = "{greeting}, {client}"
    values = {
        "greeting": words.word(day_part(local_time)),
        "client": client.name,
        "agent": agent_name,
    }
    return fill_template(template, values)


# ------------------------------------------------------------------- handling


@dataclass(frozen=True)
class ResolvedHandling:
    """The handling that applies now and why; ``announce_hours`` asks the agent to tell the
    caller the opening hours (outside hours)."""

    handling: Handling
    source: HandlingSource
    announce_hours: bool = False


def active_exception(
    exceptions: Iterable[CurrentException], now: datetime
) -> CurrentException | None:
    """The current exception in force at ``now``; with several, the most recently started."""
    active = [e for e in exceptions if e.active_at(now)]
    return max(active, key=lambda e: e.starts_at) if active else None


def resolve_handling(
    client: ClientConfig,
    hours: HoursVerdict,
    exception: CurrentException | None,
    *,
    employee: Employee | None = None,
    faq: FaqEntry | None = None,
) -> ResolvedHandling:
    """Which handling applies (see the module docstring for the order)."""
    closed = not hours.is_open
    if exception is not None and exception.handling is not None:
        return ResolvedHandling(exception.handling, HandlingSource.EXCEPTION, closed)
    if closed:
        return ResolvedHandling(NOTE, HandlingSource.CLOSED, True)
    if employee is not None:
        return ResolvedHandling(employee.handling, HandlingSource.EMPLOYEE)
    if faq is not None:
        if faq.handling is not None:
            return ResolvedHandling(faq.handling, HandlingSource.FAQ)
        linked = next((e for e in client.employees if e.employee_id == faq.employee_id), None)
        if linked is not None:
            return ResolvedHandling(linked.handling, HandlingSource.EMPLOYEE)
    return ResolvedHandling(client.standard_handling, HandlingSource.STANDARD)


# ------------------------------------------------------------------ the script


@dataclass(frozen=True)
class EmployeeLine:
    employee: Employee
    handling: ResolvedHandling


@dataclass(frozen=True)
class FaqLine:
    entry: FaqEntry
    handling: ResolvedHandling


@dataclass(frozen=True)
class AgentScript:
    client_id: int
    client_name: str
    tone: Tone
    prompt_set: Tone  # which recorded prompts the caller hears
    language: str
    greeting: str
    day_part: DayPart
    work_instruction: str
    exception: CurrentException | None  # shown above everything while active
    hours: HoursVerdict
    hours_summary: HoursSummary
    handling: ResolvedHandling  # for the call in general (no employee or FAQ chosen)
    employees: tuple[EmployeeLine, ...] = field(default=())
    faq: tuple[FaqLine, ...] = field(default=())
    spell_names: bool = True  # formal: spell names back
    repeat_numbers: bool = True  # formal: repeat numbers back

    @property
    def is_open(self) -> bool:
        return self.hours.is_open


def build_script(
    client: ClientConfig,
    now: datetime,
    words: DayPartWords | None = None,
    agent_name: str = "",
    *,
    summary_days: int = 14,
) -> AgentScript:
    """Everything the agent sees for ``client`` at ``now`` (aware)."""
    words = words or DayPartWords()
    hours = status_at(client.hours, now)
    local = hours.local_time
    exception = active_exception(client.exceptions, now)
    formal = client.tone is Tone.FORMAL
    today: date = local.date()
    return AgentScript(
        client_id=client.client_id,
        client_name=client.name,
        tone=client.tone,
        prompt_set=client.tone,
        language=client.language,
        greeting=greeting_text(client, local.time(), words, agent_name),
        day_part=day_part(local.time()),
        work_instruction=client.work_instruction,
        exception=exception,
        hours=hours,
        hours_summary=summarize(client.hours, today, summary_days),
        handling=resolve_handling(client, hours, exception),
        employees=tuple(
            EmployeeLine(e, resolve_handling(client, hours, exception, employee=e))
            for e in sorted(client.employees, key=lambda e: (e.department, e.name))
        ),
        faq=tuple(
            FaqLine(f, resolve_handling(client, hours, exception, faq=f))
            for f in sorted(client.faq, key=lambda f: (f.position, f.faq_id))
        ),
        spell_names=formal,
        repeat_numbers=formal,
    )


# ------------------------------------------------------------ callback number


class CallbackCheck(StrEnum):
    OK = "ok"
    EMPTY = "empty"  # no number given
    OWN_NUMBER = "own_number"  # the client's own number: the client cannot call itself back
    INVALID = "invalid"  # not written as a phone number (letters: a typo, never stripped)


@dataclass(frozen=True)
class CallbackNumberVerdict:
    result: CallbackCheck
    number: str | None  # normalised (E.164) when one was given

    @property
    def ok(self) -> bool:
        return self.result is CallbackCheck.OK


def check_callback_number(
    candidate: str | None, own_numbers: Iterable[str], region: str = DEFAULT_REGION
) -> CallbackNumberVerdict:
    """F-S9: refuse the client's own number(s) as a callback number (normalised compare;
    an own-number entry ending in ``*`` covers a whole number series). Unreadable own-number
    entries are skipped rather than blocking the agent. A number with letters (``12ab34``)
    is ``INVALID``: it was mistyped, and stripping the letters would store another number."""
    number = normalize(candidate, region)
    if number is None:  # nothing given, or a word such as "anonymous"
        return CallbackNumberVerdict(CallbackCheck.EMPTY, None)
    try:
        check_typed(candidate or "")
    except InvalidNumber:
        return CallbackNumberVerdict(CallbackCheck.INVALID, None)
    own = _own_numbers(tuple(own_numbers), region)
    if own.match(number) is not None:
        return CallbackNumberVerdict(CallbackCheck.OWN_NUMBER, number)
    return CallbackNumberVerdict(CallbackCheck.OK, number)


def _own_numbers(entries: tuple[str, ...], region: str) -> NumberList:
    valid = []
    for entry in entries:
        try:
            NumberList.from_entries([entry], region)
        except InvalidNumber:
            continue
        valid.append(entry)
    return NumberList.from_entries(valid, region)
