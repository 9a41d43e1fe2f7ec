import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asterisk_cube.core.numbers import (
    InvalidNumber,
    NumberList,
    NumberPattern,
    check_typed,
    is_withheld,
    normalize,
    normalize_prefix,
    parse_pattern,
    presentation_withheld,
    presented_number,
    same_number,
)


@pytest.mark.parametrize(
    "raw",
    [
        "+4791234567",
        "+47 912 34 567",
        "004791234567",
        "4791234567",
        "91234567",
        "912 34 567",
        "sip:91234567@carrier.example",
        "sip:+4791234567@carrier.example;user=phone",
        '"Bob" <sip:91234567@10.0.0.1>',
        "tel:+47-912-34-567",
    ],
)
def test_norwegian_shapes_normalise_to_e164(raw):
    assert normalize(raw, "NO") == "+4791234567"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("011 1234567", "RS", "+381111234567"),
        ("070-123 45 67", "SE", "+46701234567"),
        ("0046701234567", "NO", "+46701234567"),
        ("+381111234567", "NO", "+381111234567"),
    ],
)
def test_other_regions(raw, region, expected):
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "  ",
        "anonymous",
        "Anonymous",
        "unknown",
        "restricted",
        "withheld",
        "private",
        "unavailable",
        "0",
        "000",
        "Anonymous <sip:anonymous@anonymous.invalid>",
        "+",
    ],
)
def test_withheld_callers_have_no_number(raw):
    assert is_withheld(raw)
    assert normalize(raw) is None


@pytest.mark.parametrize(
    ("presentation", "withheld"),
    [
        # ${CALLERID(pres)} names
        ("allowed_not_screened", False),
        ("allowed_passed_screen", False),
        ("allowed", False),
        ("prohib_not_screened", True),
        ("prohib_passed_screen", True),
        ("prohib", True),
        ("unavailable", True),
        # agi_callingpres numbers
        ("0", False),
        ("3", False),
        ("32", True),
        ("35", True),
        ("67", True),
        # nothing passed (an old dialplan): shown as before
        ("", False),
        (None, False),
    ],
)
def test_restricted_presentation_withholds_the_number(presentation, withheld):
    assert presentation_withheld(presentation) is withheld
    shown = presented_number("+4791234567", presentation)
    assert shown == ("anonymous" if withheld else "+4791234567")
    assert is_withheld(shown) is withheld


def test_short_numbers_get_a_stable_form():
    assert normalize("1881", "NO") == normalize("1881", "NO") == "+471881"


def test_prefixes():
    assert normalize_prefix("+47 82*") == "+4782"
    assert normalize_prefix("0047 82") == "+4782"
    assert normalize_prefix("82", "NO") == "+4782"
    assert normalize_prefix("082", "RS") == "+38182"
    assert normalize_prefix("08", "SE") == "+468"
    with pytest.raises(InvalidNumber):
        normalize_prefix("*")


def test_unknown_region_is_refused():
    with pytest.raises(InvalidNumber):
        normalize_prefix("12", "XX")


def test_same_number():
    assert same_number("91234567", "+47 912 34 567")
    assert not same_number("91234567", "91234568")
    assert not same_number(None, None)
    assert not same_number("anonymous", "anonymous")


def test_parse_pattern():
    assert parse_pattern("912 34 567") == NumberPattern("+4791234567")
    assert parse_pattern("+4782*") == NumberPattern("+4782", prefix=True)
    with pytest.raises(InvalidNumber):
        parse_pattern("anonymous")


def test_number_list_match_prefers_exact_then_longest_prefix():
    lst = NumberList.from_entries(["+4791234567", "+479*", "+47912*"])
    assert lst.match("+4791234567") == NumberPattern("+4791234567")
    assert lst.match("+4791299999") == NumberPattern("+47912", prefix=True)
    assert lst.match("+4798888888") == NumberPattern("+479", prefix=True)
    assert lst.match("+4722222222") is None
    assert lst.match(None) is None
    assert not NumberList()
    assert lst


def test_specificity_order():
    assert (
        NumberPattern("+47", prefix=True).specificity()
        < NumberPattern("+4791", prefix=True).specificity()
    )
    assert NumberPattern("+4791", prefix=True).specificity() < NumberPattern("+47").specificity()


@given(st.text(alphabet="0123456789 +-()", max_size=20))
@example("+001+00")  # found by Hypothesis: the mechanical form kept the zeros after "+"
@example("+310000000")  # and phonenumbers drops a digit of a number it does not know
@example("0001")  # and "00" + zeros gave "+01", which normalises to "+1"
@example("+11201200000+0")  # and a mechanical form that is a valid number read again
def test_normalize_never_crashes_and_is_idempotent(raw):
    first = normalize(raw, "NO")
    if first is None:
        assert is_withheld(raw)
    else:
        assert first.startswith("+")
        assert normalize(first, "NO") == first


@given(st.from_regex(r"[49][0-9]{7}", fullmatch=True))
def test_national_and_international_forms_agree(national):
    assert same_number(national, "+47" + national)
    assert same_number(national, "0047" + national)


@given(
    st.one_of(
        st.from_regex(r"\+(45|46|47|358|381)[0-9]{5,11}", fullmatch=True),  # the fast path
        st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    ),
    st.sampled_from(["NO", "SE", "RS", "US"]),
)
def test_plain_e164_fast_path_agrees_with_phonenumbers(number, region):
    import phonenumbers

    from asterisk_cube.core import numbers

    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    else:  # what phonenumbers does not know keeps every digit
        expected = numbers._mechanical(number, region)
    assert numbers.normalize(number, region) == expected


@given(
    st.lists(st.from_regex(r"\+47[0-9]{0,8}", fullmatch=True), max_size=8),
    st.lists(st.from_regex(r"\+47[0-9]{0,8}", fullmatch=True), max_size=4),
    st.from_regex(r"\+47[0-9]{0,8}", fullmatch=True),
)
def test_number_list_match_is_the_longest_prefix_of_any_length(prefixes, exact, number):
    """Only the lengths the list has are tried; the answer must be that of trying them all."""
    lst = NumberList(frozenset(exact), frozenset(prefixes))
    if number in exact:
        expected = NumberPattern(number)
    else:
        heads = [number[:end] for end in range(len(number), 0, -1) if number[:end] in prefixes]
        expected = NumberPattern(heads[0], prefix=True) if heads else None
    assert lst.match(number) == expected


@pytest.mark.parametrize(
    "typed", ["+47 912 34 567", "912\u00a034\u00a0567", "(22) 12-34/56", "0047.22.12.34.56"]
)
def test_typed_numbers_may_have_separators(typed):
    assert check_typed(typed) == typed.strip()


@pytest.mark.parametrize("typed", ["12ab34", "9123456x", "+47 912 34 567 ext 2", "", "+", "#123"])
def test_typed_numbers_with_letters_or_other_signs_are_refused_naming_the_input(typed):
    with pytest.raises(InvalidNumber, match=re.escape(repr(typed))):
        check_typed(typed)
    with pytest.raises(InvalidNumber):
        parse_pattern(typed + "*")  # a list entry (own number series, blocklist prefix) too
