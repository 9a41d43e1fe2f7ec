import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cube.core.adblock import (
    BLOCKING_REASONS,
    AdblockConfig,
    AdblockReason,
    GlobalLists,
    verdict,
)
from asterisk_cube.core.numbers import InvalidNumber

SHARED = GlobalLists.build(
    blocklist=["+4781*", "+4799999999"],
    advertisers=["+4722222222", "+4723*"],
)


def cfg(**kw):
    kw.setdefault("enabled", True)
    return AdblockConfig.build(**kw)


def test_disabled_allows_everything():
    config = cfg(enabled=False, blocklist=["91234567"])
    v = verdict("91234567", config, SHARED)
    assert not v.blocked
    assert v.reason is AdblockReason.DISABLED
    assert v.caller == "+4791234567"
    assert not verdict("anonymous", config, SHARED).blocked


@pytest.mark.parametrize(
    "caller", [None, "", "anonymous", "Restricted", "unknown", "withheld", "0"]
)
def test_anonymous_rule(caller):
    v = verdict(caller, cfg(), SHARED)
    assert v.blocked
    assert v.reason is AdblockReason.ANONYMOUS
    v = verdict(caller, cfg(block_anonymous=False), SHARED)
    assert not v.blocked
    assert v.reason is AdblockReason.WITHHELD_ALLOWED


def test_client_blocklist_exact_and_prefix():
    config = cfg(blocklist=["912 34 567", "+4741*"])
    v = verdict("+4791234567", config, SHARED)
    assert (v.blocked, v.reason, v.matched.value) == (
        True,
        AdblockReason.CLIENT_BLOCKLIST,
        "+4791234567",
    )
    v = verdict("41000000", config, SHARED)
    assert v.blocked and v.matched.prefix and v.matched.value == "+4741"


def test_known_advertiser_and_global_lists():
    v = verdict("22222222", cfg(), SHARED)
    assert v.blocked and v.reason is AdblockReason.KNOWN_ADVERTISER
    v = verdict("23000000", cfg(), SHARED)
    assert v.blocked and v.reason is AdblockReason.KNOWN_ADVERTISER
    v = verdict("81549300", cfg(), SHARED)
    assert v.blocked and v.reason is AdblockReason.GLOBAL_BLOCKLIST
    v = verdict("99999999", cfg(), SHARED)
    assert v.blocked and v.reason is AdblockReason.GLOBAL_BLOCKLIST


def test_ordinary_caller_is_allowed():
    v = verdict("+46701234567", cfg(), SHARED)
    assert not v.blocked and v.reason is AdblockReason.NO_MATCH
    assert v.caller == "+46701234567"


def test_client_allowlist_overrides_global_lists_and_advertisers():
    config = cfg(allowlist=["22222222", "+4781*"])
    v = verdict("22222222", config, SHARED)
    assert not v.blocked and v.reason is AdblockReason.ALLOWLISTED
    assert not verdict("81000000", config, SHARED).blocked


def test_client_lists_most_specific_entry_wins():
    config = cfg(allowlist=["+4722*"], blocklist=["+4722123456", "+479*"])
    assert verdict("22123456", config).reason is AdblockReason.CLIENT_BLOCKLIST
    assert verdict("22000000", config).reason is AdblockReason.ALLOWLISTED
    config = cfg(allowlist=["+4791234567"], blocklist=["+479*"])
    assert verdict("91234567", config).reason is AdblockReason.ALLOWLISTED
    assert verdict("91234568", config).reason is AdblockReason.CLIENT_BLOCKLIST


def test_tie_between_client_allow_and_block_blocks():
    config = cfg(allowlist=["+4791*"], blocklist=["+4791*"])
    assert verdict("91234567", config).blocked


def test_allowlist_does_not_admit_anonymous():
    config = cfg(allowlist=["+47*"])
    assert verdict("anonymous", config).reason is AdblockReason.ANONYMOUS


def test_region_reads_national_numbers():
    config = cfg(region="RS", blocklist=["011 1234567"])
    assert verdict("+381111234567", config).blocked
    assert verdict("0111234567", config).blocked


def test_bad_list_entry_is_refused():
    with pytest.raises(InvalidNumber):
        cfg(blocklist=["call me maybe"])


@given(
    caller=st.one_of(st.none(), st.from_regex(r"\+?[0-9 ]{0,12}", fullmatch=True)),
    enabled=st.booleans(),
    anon=st.booleans(),
)
def test_blocked_iff_reason_is_blocking(caller, enabled, anon):
    config = cfg(enabled=enabled, block_anonymous=anon, blocklist=["+4790*"])
    v = verdict(caller, config, SHARED)
    assert v.blocked == (v.reason in BLOCKING_REASONS)
    if not enabled:
        assert not v.blocked
