"""Phone number normalisation, shared by ad-blocking, contact matching and the call script.

Caller IDs arrive in every shape (``+47 912 34 567``, ``004791234567``,
``4791234567``, ``sip:91234567@carrier``); blocklists, contact lists and a
client's own numbers are typed by people in yet other shapes. Comparing them
only works after all of them are brought to one form: E.164 (``+4791234567``),
using ``phonenumbers`` with a default region per client or campaign (``NO``,
``SE``, ``RS`` ...) for numbers written nationally.

Withheld callers (empty, ``anonymous``, ``restricted``, ``unknown``, ``0``...)
have no number: :func:`normalize` returns ``None`` and :func:`is_withheld`
says so, so no rule can accidentally match them as a number.

A caller may also withhold a number Asterisk knows: ``Privacy: id`` with the real
number in ``P-Asserted-Identity`` (taken when the endpoint has ``trust_id_inbound``)
gives the channel that number with a *restricted* presentation. Every entry point
passes the number through :func:`presented_number` with the channel's presentation,
so such a caller is anonymous for ad-blocking, classification, the desk, the missed-call
list, the panel and the stored call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers

DEFAULT_REGION = "NO"

_E164 = phonenumbers.PhoneNumberFormat.E164
_NON_DIGITS = re.compile(r"\D")
# Already E.164 (how most trunks deliver caller IDs): phonenumbers would hand it back
# unchanged, and parsing costs ~15 us per call on the FastAGI entry's hot path.
_PLAIN_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


# Countries whose international numbers phonenumbers leaves as they are, unless the
# national part starts with 0 (checked on random numbers: tests/unit/test_core_numbers.py).
# Others (e.g. +1 strips a national 1, +378 adds 0549) always take the full parse.
_FAST_COUNTRIES = ("45", "46", "47", "358", "381")


def _plain_e164(text: str) -> bool:
    """True when ``text`` is an international number in one of our markets' countries
    that phonenumbers would return unchanged."""
    if not _PLAIN_E164.fullmatch(text):
        return False
    for code in _FAST_COUNTRIES:
        if text.startswith(code, 1):
            return text[1 + len(code)] != "0"
    return False


class InvalidNumber(ValueError):
    """A number or prefix that cannot be understood; ``str()`` names the input."""


# What people write in a number they type: digits, an optional leading + and the usual
# separators. A letter (``12ab34``) makes it a typo, not a number: never strip it away.
_TYPED = re.compile(r"\+?[0-9\s().\-/]*[0-9][0-9\s().\-/]*")


def check_typed(raw: str, what: str = "number") -> str:
    """``raw`` stripped, when it is written as a phone number a person typed (digits, an
    optional leading ``+``, spaces of any kind, ``-``, ``.``, ``/``, parentheses); else
    :class:`InvalidNumber` naming it. For input from people (CSV files, the CLI, web forms),
    not for caller IDs (those keep :func:`normalize`: SIP URIs, display names)."""
    text = (raw or "").strip()
    if not _TYPED.fullmatch(text):
        raise InvalidNumber(
            f"{what} {raw!r} is not a phone number (digits, optional leading +; "
            "no letters or other characters)"
        )
    return text


def _user_part(raw: str) -> str:
    """Strip a SIP URI or display name down to its user part (``sip:123@host`` -> ``123``)."""
    text = raw.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    for scheme in ("sips:", "sip:", "tel:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    if "@" in text:
        text = text.split("@", 1)[0]
    return text.split(";", 1)[0].strip()


def is_withheld(raw: str | None) -> bool:
    """True when the caller sent no usable number.

    That is: nothing, a word such as ``anonymous``/``restricted``/``unknown``/
    ``withheld``/``private`` (any text without a digit), or only zeros, which
    some carriers send for a withheld number.
    """
    return raw is None or _number_part(raw) is None


WITHHELD = "anonymous"
"""What a caller with a restricted presentation is known as (never its number)."""

# Asterisk's presentation bits (AST_PRES_RESTRICTED 0x20, AST_PRES_UNAVAILABLE 0x40).
_PRES_NOT_ALLOWED = 0x60


def presentation_withheld(presentation: str | None) -> bool:
    """True when Asterisk's caller presentation says the number must not be shown.

    Takes both spellings Asterisk uses: the names of ``${CALLERID(pres)}`` (``allowed``,
    ``allowed_not_screened``, ``prohib_not_screened``, ``prohib``, ``unavailable``...) and
    the number of FastAGI's ``agi_callingpres`` (``0``-``3`` allowed, ``32``-``35``
    prohibited, ``67`` unavailable: the 0x20/0x40 bits). Empty or unknown text is *not*
    withheld (an old dialplan that passes nothing keeps showing numbers)."""
    text = (presentation or "").strip().lower()
    if not text:
        return False
    if text.isdigit():
        return bool(int(text) & _PRES_NOT_ALLOWED)
    return text.startswith("prohib") or text == "unavailable"


def presented_number(raw: str | None, presentation: str | None) -> str:
    """The caller's number as it may be shown and stored: :data:`WITHHELD` when the
    presentation withholds it, else ``raw`` as it came (``""`` for None)."""
    if presentation_withheld(presentation):
        return WITHHELD
    return raw or ""


def _number_part(raw: str) -> str | None:
    """The user part of ``raw``, or None when it holds no usable number (withheld)."""
    text = _user_part(raw)
    digits = _NON_DIGITS.sub("", text)
    return None if not digits or set(digits) == {"0"} else text


def _country_code(region: str) -> int:
    code = phonenumbers.country_code_for_region(region.upper())
    if not code:
        raise InvalidNumber(f"unknown region {region!r}")
    return code


def _mechanical(text: str, region: str) -> str:
    """Bring digits to a ``+``-form without validating them (for prefixes and odd numbers).

    ``+47 82`` -> ``+4782``; ``0047 82`` -> ``+4782``; national ``082`` in ``RS`` -> ``+38182``
    (the national trunk prefix is dropped and the region's country code added).
    """
    stripped = text.strip()
    digits = _NON_DIGITS.sub("", stripped)
    if not digits:
        raise InvalidNumber(f"no digits in {text!r}")
    if stripped.startswith("+"):
        # a country code never starts with 0 (phonenumbers drops such zeros too, so the
        # result stays the same when normalised again: "+001+00" -> "+100")
        return "+" + (digits.lstrip("0") or "0")
    if digits.startswith("00"):  # international prefix; then zeros as after "+"
        return "+" + (digits[2:].lstrip("0") or "0")
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    trunk = meta.national_prefix if meta is not None else None
    if trunk and digits.startswith(trunk):
        digits = digits[len(trunk) :]
    return f"+{_country_code(region)}{digits}"


def normalize(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 form of ``raw`` (``+4791234567``), or ``None`` for a withheld caller.

    National numbers are read in ``region``. A number ``phonenumbers`` cannot
    parse (short service codes and the like) still gets a stable ``+``-form so
    that the same input always compares equal.
    """
    if raw is None:
        return None
    if _plain_e164(raw):
        return raw  # how trunks mostly send caller IDs: nothing to strip, not withheld
    text = _number_part(raw)
    if text is None:
        return None
    if _plain_e164(text):
        return text
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return _settled(_mechanical(text, region))
    if not phonenumbers.is_valid_number(parsed):
        # phonenumbers may drop digits of a number it does not know ("+310000000" ->
        # "+31000000" -> "+3100000" ...): keep every digit, so normalising is idempotent
        return _settled(_mechanical(text, region))
    return phonenumbers.format_number(parsed, _E164)


def _settled(mechanical: str) -> str:
    """The mechanical form, or the valid number it turns out to be: normalising it again
    must give the same (``+11201200000+0`` -> ``+112012000000``, a valid ``+1 201…``
    once read as E.164, so it is that number)."""
    try:
        parsed = phonenumbers.parse(mechanical, None)
    except phonenumbers.NumberParseException:
        return mechanical
    if phonenumbers.is_valid_number(parsed):
        return phonenumbers.format_number(parsed, _E164)
    return mechanical


def dialled_forms(raw: str, region: str = DEFAULT_REGION) -> tuple[str, ...]:
    """The shapes a trunk may deliver a dialled number in, ``raw`` first: as written, E.164
    (``+4721000009``), E.164 without the ``+`` and the national number (``21000009``, with
    the region's trunk prefix where it has one). Empty for a withheld ``raw``."""
    e164 = normalize(raw, region)
    if e164 is None:
        return ()
    forms = [raw.strip(), e164, e164[1:]]
    try:
        parsed = phonenumbers.parse(e164)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms.append(_NON_DIGITS.sub("", national))
    except phonenumbers.NumberParseException:
        pass
    return tuple(dict.fromkeys(f for f in forms if f))


def normalize_prefix(raw: str, region: str = DEFAULT_REGION) -> str:
    """``+``-form of a number prefix such as ``+47 82`` or ``082`` (never validated).

    Raises :class:`InvalidNumber` when there are no digits.
    """
    return _mechanical(raw.rstrip("*").strip(), region)


def same_number(a: str | None, b: str | None, region: str = DEFAULT_REGION) -> bool:
    """True when both are real numbers and equal after normalisation."""
    na, nb = normalize(a, region), normalize(b, region)
    return na is not None and na == nb


@dataclass(frozen=True)
class NumberPattern:
    """One list entry: an exact number or, when ``prefix`` is set, every number starting so."""

    value: str
    prefix: bool = False

    def specificity(self) -> int:
        """Higher wins: exact beats any prefix, a longer prefix beats a shorter one."""
        return 1000 if not self.prefix else len(self.value)


def parse_pattern(raw: str, region: str = DEFAULT_REGION) -> NumberPattern:
    """Read a list entry: ``+4791234567`` (exact) or ``+4782*`` (prefix, trailing ``*``).

    Raises :class:`InvalidNumber` for an entry without digits or with letters.
    """
    text = raw.strip()
    check_typed(text.removesuffix("*"), "list entry")
    if text.endswith("*"):
        return NumberPattern(normalize_prefix(text, region), prefix=True)
    number = normalize(text, region)
    if number is None:
        raise InvalidNumber(f"not a number: {raw!r}")
    return NumberPattern(number)


@dataclass(frozen=True)
class NumberList:
    """A compiled list of exact numbers and prefixes; matching costs one set lookup plus one per
    distinct prefix length.

    Build it once per configuration change with :meth:`from_entries` and keep it
    (the FastAGI entry runs per call and must stay cheap).
    """

    exact: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    # The lengths of the prefixes, longest first: a number is only cut at those (a list with
    # one prefix costs one lookup instead of one per digit of the number).
    prefix_lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lengths = tuple(sorted({len(p) for p in self.prefixes}, reverse=True))
        object.__setattr__(self, "prefix_lengths", lengths)

    @classmethod
    def from_entries(cls, entries: Iterable[str], region: str = DEFAULT_REGION) -> NumberList:
        """Compile raw entries (``*`` suffix for prefixes); raises :class:`InvalidNumber`."""
        exact: set[str] = set()
        prefixes: set[str] = set()
        for raw in entries:
            pattern = parse_pattern(str(raw), region)
            (prefixes if pattern.prefix else exact).add(pattern.value)
        return cls(frozenset(exact), frozenset(prefixes))

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def match(self, number: str | None) -> NumberPattern | None:
        """Most specific entry matching an already normalised ``number``, or ``None``."""
        if not number:
            return None
        if number in self.exact:
            return NumberPattern(number)
        for end in self.prefix_lengths:
            if end <= len(number) and number[:end] in self.prefixes:
                return NumberPattern(number[:end], prefix=True)
        return None


EMPTY_LIST = NumberList()
