"""Call entry for an answering-service client (F-S6, F-S7, F-S8): one decision per call,
before any agent is involved.

The FastAGI handler calls :func:`decide_entry` with the caller ID, the instant
and the client's cached configuration, sets :meth:`EntryDecision.channel_variables`
on the channel and returns; the generated dialplan branches on them. Order:

1. ad-blocking first: a blocked caller is rejected whatever the hours (blocked
   calls never reach an agent, F-S6);
2. outside hours with ``announce`` closed handling: the hours are played and
   the call ends;
3. otherwise the call goes to the answering-service queue; outside hours the
   agent's script then says "take a note, tell the hours" (see ``script``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from .adblock import AdblockConfig, AdblockVerdict, GlobalLists, verdict
from .hours import HoursVerdict, Schedule, status_at
from .script import ClosedHandling, Tone


class EntryAction(StrEnum):
    REJECT = "reject"  # advertising: play the rejection message, hang up
    ANNOUNCE = "announce"  # closed: play the hours, hang up
    QUEUE = "queue"  # to the answering-service queue (Stasis)


@dataclass(frozen=True)
class EntryDecision:
    action: EntryAction
    tone: Tone
    hours: HoursVerdict
    adblock: AdblockVerdict

    def channel_variables(self) -> dict[str, str]:
        """``CUBE_*`` variables for the dialplan. ``CUBE_NEXT_OPEN`` is UTC ISO 8601 and
        ``CUBE_NEXT_OPEN_EPOCH`` Unix seconds (for ``SayUnixTime`` with ``CUBE_TZ``); both empty
        when open or never opening."""
        next_open = self.hours.next_open
        return {
            "CUBE_ACTION": self.action.value,
            "CUBE_HOURS": self.hours.status.value,
            "CUBE_TONE": self.tone.value,
            "CUBE_ADBLOCK": "block" if self.adblock.blocked else "allow",
            "CUBE_ADBLOCK_REASON": self.adblock.reason.value,
            "CUBE_NEXT_OPEN": next_open.astimezone(UTC).isoformat() if next_open else "",
            "CUBE_NEXT_OPEN_EPOCH": str(int(next_open.timestamp())) if next_open else "",
            "CUBE_TZ": getattr(self.hours.local_time.tzinfo, "key", ""),
        }


def decide_entry(
    caller_id: str | None,
    now: datetime,
    *,
    hours: Schedule,
    adblock: AdblockConfig,
    shared: GlobalLists | None = None,
    tone: Tone = Tone.FORMAL,
    closed_handling: ClosedHandling = ClosedHandling.NOTE,
) -> EntryDecision:
    return decide(
        status_at(hours, now),
        verdict(caller_id, adblock, shared),
        tone=tone,
        closed_handling=closed_handling,
    )


def decide(
    open_now: HoursVerdict,
    ad: AdblockVerdict,
    *,
    tone: Tone = Tone.FORMAL,
    closed_handling: ClosedHandling = ClosedHandling.NOTE,
) -> EntryDecision:
    """:func:`decide_entry` from verdicts already made: the FastAGI adapter reuses an hours
    verdict until the next opening/closing and an ad-block verdict for a repeat caller."""
    if ad.blocked:
        action = EntryAction.REJECT
    elif not open_now.is_open and closed_handling is ClosedHandling.ANNOUNCE:
        action = EntryAction.ANNOUNCE
    else:
        action = EntryAction.QUEUE
    return EntryDecision(action, tone, open_now, ad)
