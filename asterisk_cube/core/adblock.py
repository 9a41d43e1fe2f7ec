"""Ad-blocking verdict for an answering-service call (F-S6): allow or block, always with a reason.

A client that enables ad-blocking wants sales calls rejected before an agent
answers in its name. The FastAGI entry asks :func:`verdict` once per call; the
lists are compiled once per configuration change (:class:`AdblockConfig`), so
the per-call cost is a normalisation and a few set lookups.

Precedence (first rule that decides wins):

1. ad-blocking disabled for the client -> allow (``DISABLED``);
2. withheld caller (no number) -> block if the client blocks anonymous callers
   (``ANONYMOUS``), else allow (``WITHHELD_ALLOWED``);
3. the client's own lists: the most specific matching entry of the client
   allowlist and client blocklist decides (exact beats prefix, longer prefix
   beats shorter; on a tie the block wins) -> ``ALLOWLISTED`` or
   ``CLIENT_BLOCKLIST``. A client allowlist entry therefore also overrides
   the global lists below: the client knows its own suppliers best;
4. known-advertiser numbers -> block (``KNOWN_ADVERTISER``);
5. the global blocklist -> block (``GLOBAL_BLOCKLIST``);
6. otherwise allow (``NO_MATCH``).

Reasons are enum keys, not sentences: the web layer translates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .numbers import DEFAULT_REGION, EMPTY_LIST, NumberList, NumberPattern, normalize


class AdblockReason(StrEnum):
    DISABLED = "disabled"
    WITHHELD_ALLOWED = "withheld_allowed"
    ANONYMOUS = "anonymous"
    ALLOWLISTED = "allowlisted"
    CLIENT_BLOCKLIST = "client_blocklist"
    KNOWN_ADVERTISER = "known_advertiser"
    GLOBAL_BLOCKLIST = "global_blocklist"
    NO_MATCH = "no_match"


BLOCKING_REASONS = frozenset(
    {
        AdblockReason.ANONYMOUS,
        AdblockReason.CLIENT_BLOCKLIST,
        AdblockReason.KNOWN_ADVERTISER,
        AdblockReason.GLOBAL_BLOCKLIST,
    }
)


@dataclass(frozen=True)
class AdblockVerdict:
    """``blocked`` plus the deciding ``reason``; ``caller`` is the normalised number (None if
    withheld) and ``matched`` the list entry that decided, if any — all of it worth logging."""

    blocked: bool
    reason: AdblockReason
    caller: str | None = None
    matched: NumberPattern | None = None


@dataclass(frozen=True)
class GlobalLists:
    """Lists shared by every client (compiled once)."""

    blocklist: NumberList = EMPTY_LIST
    advertisers: NumberList = EMPTY_LIST

    @classmethod
    def build(
        cls,
        blocklist: Iterable[str] = (),
        advertisers: Iterable[str] = (),
        region: str = DEFAULT_REGION,
    ) -> GlobalLists:
        return cls(
            NumberList.from_entries(blocklist, region),
            NumberList.from_entries(advertisers, region),
        )


@dataclass(frozen=True)
class AdblockConfig:
    """One client's ad-block settings, lists already compiled; ``region`` reads national numbers."""

    enabled: bool = False
    block_anonymous: bool = True
    region: str = DEFAULT_REGION
    blocklist: NumberList = EMPTY_LIST
    allowlist: NumberList = EMPTY_LIST

    @classmethod
    def build(
        cls,
        *,
        enabled: bool,
        block_anonymous: bool = True,
        region: str = DEFAULT_REGION,
        blocklist: Iterable[str] = (),
        allowlist: Iterable[str] = (),
    ) -> AdblockConfig:
        """Compile raw entries (``*`` suffix = prefix); raises ``InvalidNumber`` on a bad entry."""
        return cls(
            enabled=enabled,
            block_anonymous=block_anonymous,
            region=region,
            blocklist=NumberList.from_entries(blocklist, region),
            allowlist=NumberList.from_entries(allowlist, region),
        )


NO_GLOBAL_LISTS = GlobalLists()


def verdict(
    caller_id: str | None, config: AdblockConfig, shared: GlobalLists | None = None
) -> AdblockVerdict:
    """Judge one caller for one client; see the module docstring for the precedence."""
    shared = shared or NO_GLOBAL_LISTS
    if not config.enabled:
        return AdblockVerdict(False, AdblockReason.DISABLED, normalize(caller_id, config.region))
    caller = normalize(caller_id, config.region)
    if caller is None:
        if config.block_anonymous:
            return AdblockVerdict(True, AdblockReason.ANONYMOUS)
        return AdblockVerdict(False, AdblockReason.WITHHELD_ALLOWED)

    allowed = config.allowlist.match(caller)
    blocked = config.blocklist.match(caller)
    if blocked is not None and (allowed is None or blocked.specificity() >= allowed.specificity()):
        return AdblockVerdict(True, AdblockReason.CLIENT_BLOCKLIST, caller, blocked)
    if allowed is not None:
        return AdblockVerdict(False, AdblockReason.ALLOWLISTED, caller, allowed)

    hit = shared.advertisers.match(caller)
    if hit is not None:
        return AdblockVerdict(True, AdblockReason.KNOWN_ADVERTISER, caller, hit)
    hit = shared.blocklist.match(caller)
    if hit is not None:
        return AdblockVerdict(True, AdblockReason.GLOBAL_BLOCKLIST, caller, hit)
    return AdblockVerdict(False, AdblockReason.NO_MATCH, caller)
