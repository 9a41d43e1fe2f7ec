"""When a client opens again, as word prompts to play (F-S8), for prompt sets in languages
Asterisk's ``SayUnixTime`` cannot speak (it has English digits only).

:func:`next_open_words` turns the next opening (in the client's zone) into prompt names
relative to the client's prompt set: ``("words/i-morgen", "words/klokken", "words/8",
"words/30")``. The dialplan plays them after ``next-open`` ("Vi åpner igjen ..."). The files
come from ``sounds/prompts.toml`` (``[nb.words]``, built by ``scripts/make-sounds``).

Norwegian, as a phone menu says it, on the client's *wall clock* and calendar days (so a
DST change between now and the opening changes nothing):

- the day: ``i dag`` / ``i morgen``; a weekday within the next six days (``mandag``); a week
  or more ahead the weekday and the date (``fredag den andre januar``);
- the time, 24-hour: ``klokken åtte`` (08:00), ``klokken åtte tretti`` (08:30),
  ``klokken seksten null fem`` (16:05), ``klokken null null`` (00:00). The informal set
  says ``klokka`` from the same name.
"""

from __future__ import annotations

from datetime import datetime

WORDS = "words"  # the sub-folder of a prompt set that holds the word prompts

NB_WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lordag", "sondag")
NB_MONTHS = (
    *("januar", "februar", "mars", "april", "mai", "juni"),
    *("juli", "august", "september", "oktober", "november", "desember"),
)
NB_WORDS = frozenset(
    {"i-dag", "i-morgen", "klokken", "den", *NB_WEEKDAYS, *NB_MONTHS}
    | {str(n) for n in range(60)}
    | {f"h-{n}" for n in range(1, 32)}
)
WEEK = 7  # from this many days ahead the date is said too


def _nb(when: datetime, today_days: int) -> list[str]:
    days = when.toordinal() - today_days
    if days == 0:
        said = ["i-dag"]
    elif days == 1:
        said = ["i-morgen"]
    else:
        said = [NB_WEEKDAYS[when.weekday()]]
        if days >= WEEK:
            said += ["den", f"h-{when.day}", NB_MONTHS[when.month - 1]]
    said += ["klokken", str(when.hour)]
    if when.minute >= 10:
        said.append(str(when.minute))
    elif when.minute:
        said += ["0", str(when.minute)]  # 16:05 "seksten null fem", 00:05 "null null fem"
    elif when.hour == 0:
        said.append("0")  # midnight is "null null": the hour, then one "null" for the minutes
    return said


SPEAKERS = {"nb": _nb}
VOCABULARY = {"nb": NB_WORDS}  # every name a speaker can say (tests check the files exist)
LANGUAGES = frozenset(SPEAKERS)  # prompt-set languages with word prompts


def next_open_words(next_open: datetime, now: datetime, language: str) -> tuple[str, ...]:
    """Prompt names (``words/<name>``) saying when ``next_open`` is, seen from ``now``.

    ``next_open`` is aware and in the client's zone (as :class:`~.hours.HoursVerdict` gives
    it): its wall-clock time is what is said, and ``now`` is taken to that zone for "today".
    Empty for a language without word prompts (its dialplan uses ``SayUnixTime``).
    Raises ``ValueError`` for a naive time or an opening before ``now``."""
    speak = SPEAKERS.get(language)
    if speak is None:
        return ()
    for name, value in (("next_open", next_open), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    if next_open < now:
        raise ValueError(f"next opening {next_open.isoformat()} is before now {now.isoformat()}")
    today = now.astimezone(next_open.tzinfo).toordinal()
    return tuple(f"{WORDS}/{name}" for name in speak(next_open, today))
