"""The live records of inbound work (agents, calls, forwards) and their one owner.

``AcdState`` holds every in-flight record of the distributor; the engine
(``acd.distributor``) changes them, everything else reads them through its query
methods, never through the raw dicts."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asterisk_cube.acd import contract as c
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.db import models as m

if TYPE_CHECKING:
    from asterisk_cube.acd.config import LineRoute

LOGIN_PAUSE = "login"
CALLBACK_MODE = "missed_callback"  # LiveCall.mode of a missed-call callback (F-I7)
REMOVED_PAUSE = "supervisor"  # an agent removed (CLI) during a call: paused after it
IDLE_STATES = (ag.AgentState.LOGGED_OUT, ag.AgentState.READY, ag.AgentState.PAUSED)


@dataclass
class LiveAgent:
    agent_id: int
    username: str
    name: str
    role: str
    endpoint: str | None
    skills: frozenset[str]
    permitted: frozenset[int]
    chosen: frozenset[int]
    status: ag.AgentStatus
    on_outbound_call: bool = False
    dialer_dialing: bool = False
    card_call_id: int | None = None  # the call card shown (open until closed)
    wrap_timer: asyncio.TimerHandle | None = None

    def routing_view(self) -> rt.AgentView:
        return rt.AgentView(
            agent_id=self.agent_id,
            state=self.status.state,
            lines=self.chosen,
            skills=self.skills,
            since=self.status.since,
            idle_since=self.status.idle_since,
            on_outbound_call=self.on_outbound_call,
            dialer_dialing=self.dialer_dialing,
            permitted=self.permitted,
        )


@dataclass
class LiveCall:
    call_id: int
    channel_id: str
    kind: rt.CallType
    line_id: int | None
    caller: str
    did: str
    queued_at: dt.datetime
    campaign_id: int | None = None
    client_id: int | None = None
    contact_id: int | None = None
    skill: str | None = None
    last_agent_id: int | None = None
    comment: str = ""
    phase: str = "waiting"  # waiting | offered | connecting | connected | ended
    agent_id: int | None = None
    declined: tuple[tuple[int, dt.datetime], ...] = ()
    offer_id: int | None = None
    offered_at: dt.datetime | None = None
    offer_expires: dt.datetime | None = None
    offer_timer: asyncio.TimerHandle | None = None
    answered_at: dt.datetime | None = None
    agent_channel: str | None = None
    mode: str | None = None  # outbound: preview | power | predictive | manual
    hours: str = ""  # answering service: open | closed | holiday at entry
    forward: Forward | None = None
    notes: int = 0
    card_static: tuple | None = None  # (contacts, categories, campaign name), built once
    forced_registration: bool = False
    registered: bool = False
    wrap_up_seconds: int | None = None  # the campaign's default, known at arrival
    # Channels originated for this call that may still ring (an agent's phone, a forward
    # target, a callback's legs): legs of the call even before they answer.
    ringing: list[str] = field(default_factory=list)
    lost_leg: bool = False  # a leg left (or the desk hung up) before the call was bridged
    # the Telephony.release hanging up the agent's leg (or its ringing phone), in flight:
    # the agent is given back when it is done, i.e. once that leg has left Asterisk
    agent_release: asyncio.Future | None = None
    # one queue across nodes (acd.crossnode): announced to the other nodes (committed);
    # offered to another node's agent (that node's name); a call of another node offered
    # to one of ours (its node's name: we hold no channel of it)
    announced: bool = False
    offer_node: str | None = None
    remote_node: str | None = None

    def legs(self) -> list[str]:
        """Every channel the product created or took for this call and may still hold:
        caller (or contact), agent, anything ringing, the forward target. One list, used
        by every path that ends a call, so no leg is left behind."""
        target = self.forward.channel if self.forward else None
        chain = itertools.chain((self.channel_id, self.agent_channel), self.ringing, (target,))
        return [ch for ch in dict.fromkeys(chain) if ch]

    @property
    def dialer_owned(self) -> bool:
        """An outbound dialer call: the dialer watches its legs; the inbound app does not."""
        return self.mode is not None and self.mode != CALLBACK_MODE

    def routing_view(self) -> rt.WaitingCall:
        return rt.WaitingCall(
            call_id=self.call_id,
            call_type=self.kind,
            queued_at=self.queued_at,
            line_id=self.line_id,
            skill=self.skill,
            campaign_id=self.campaign_id,
            last_agent_id=self.last_agent_id,
            declined=self.declined,
            offered_to=self.agent_id if self.phase == "offered" else None,
        )


@dataclass(frozen=True)
class DialerAgent:
    """An agent as the dialer sees it (``Distributor.dialer_pool``)."""

    agent_id: int
    state: ag.AgentState
    since: dt.datetime | None
    idle_since: dt.datetime | None
    wrap_up_until: dt.datetime | None
    pause_requested: str | None
    endpoint: str | None
    on_outbound_call: bool
    dialer_dialing: bool


@dataclass(frozen=True)
class EnquiryRegistered:
    """An enquiry was registered on a call (``Distributor.add_enquiry_listener``)."""

    call_id: int
    agent_id: int
    campaign_id: int | None
    contact_id: int | None
    topic_ids: tuple[int, ...]
    comment: str
    mode: str | None  # outbound: preview | power | predictive | manual; None for inbound


@dataclass(frozen=True)
class Release:
    """End a call in Asterisk: hang up ``channels`` (ringing or answered) and remove the
    call's bridges (``Telephony.release``); what ``Lifecycle.channel_left`` returns."""

    call_id: int
    channels: tuple[str, ...]


@dataclass
class Forward:
    """An answering-service forward in progress (F-S2)."""

    targets: list[str]
    ring_seconds: int
    index: int = 0
    status: str = "ringing"  # ringing | announcing | failed | connected
    channel: str | None = None  # the target's channel while announcing

    def view(self) -> c.ForwardView:
        return c.ForwardView(
            status=self.status,
            target=self.targets[min(self.index, len(self.targets) - 1)],
            attempt=min(self.index, len(self.targets) - 1) + 1,
            attempts=len(self.targets),
        )


@dataclass
class Clock:
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


KIND_TO_DB = {
    rt.CallType.CUSTOMER_CALLBACK: m.CallKind.CUSTOMER_CALLBACK,
    rt.CallType.NEW_CUSTOMER: m.CallKind.NEW_CUSTOMER,
    rt.CallType.SERVICE: m.CallKind.SERVICE,
    rt.CallType.ANSWERING: m.CallKind.ANSWERING,
}
DB_TO_KIND = {v: k for k, v in KIND_TO_DB.items()}


class AcdState:
    """The one owner of the distributor's live records: agents, in-flight calls (by id and
    by caller channel), the lines in memory, unprocessed missed calls and pause reasons.

    The engine (``acd.distributor``) changes them on the event loop; views, recovery and
    the ARI adapter ask the query methods below instead of walking the dicts."""

    def __init__(self) -> None:
        self.agents: dict[int, LiveAgent] = {}
        self.calls: dict[int, LiveCall] = {}
        self.by_channel: dict[str, int] = {}  # caller (or contact) channel -> call id
        self.line_priorities: dict[int, int] = {}
        self.line_info: dict[int, tuple[str, str, int]] = {}  # id -> (did, name, offer timeout)
        self.line_routes: dict[int, LineRoute] = {}  # line id -> its route
        self.callback_routes: dict[int, LineRoute] = {}  # outbound campaign id -> its route
        # Kept in memory so that building an agent's view needs no query (views are
        # rebuilt for every agent on every change): unprocessed missed calls by id
        # -> (line, caller, when), and the pause reasons agents may choose.
        self.missed: dict[int, tuple[int | None, str, dt.datetime]] = {}
        self.pause_reasons: list[tuple[str, str]] = []

    # ------------------------------------------------------------- queries

    def call(self, call_id: int | None) -> LiveCall | None:
        return self.calls.get(call_id) if call_id is not None else None

    def call_of_channel(self, channel_id: str) -> LiveCall | None:
        """The call whose caller (or contact) leg is ``channel_id``."""
        return self.call(self.by_channel.get(channel_id))

    def call_of_agent_channel(self, channel_id: str) -> int | None:
        """The connected call whose agent leg is ``channel_id`` (not the dialer's calls:
        the dialer watches their legs itself)."""
        for call in self.calls.values():
            if (
                call.agent_channel == channel_id
                and call.phase == "connected"
                and not call.dialer_owned
            ):
                return call.call_id
        return None

    def knows_channel(self, channel_id: str) -> bool:
        """A caller's or a connected agent's channel of a call in memory."""
        return channel_id in self.by_channel or self.call_of_agent_channel(channel_id) is not None

    def waiting(self) -> list[rt.WaitingCall]:
        """Routing views of the calls waiting or offered."""
        return [
            call.routing_view()
            for call in self.calls.values()
            if call.phase in ("waiting", "offered")
        ]

    def waiting_channels(self) -> list[str]:
        """Channels of calls waiting or offered, in queue order."""
        ordered = rt.ordered(self.waiting(), self.line_priorities)
        channels = (self.calls[int(w.call_id)].channel_id for w in ordered)
        return [ch for ch in channels if ch]  # another node's call offered here: none

    def waiting_for_campaign(self, campaign_id: int) -> int:
        """Inbound customer callbacks to this campaign waiting (or offered) now."""
        return sum(
            1
            for call in self.calls.values()
            if call.campaign_id == campaign_id
            and call.kind == rt.CallType.CUSTOMER_CALLBACK
            and call.phase in ("waiting", "offered")
        )

    def offer_of(self, agent_id: int) -> LiveCall | None:
        """The call offered to this agent now, if any."""
        found = None
        for call in self.calls.values():
            if call.phase == "offered" and call.agent_id == agent_id:
                found = call
        return found

    def has_connected_call(self, agent_id: int) -> bool:
        return any(
            call.agent_id == agent_id and call.phase == "connected" for call in self.calls.values()
        )

    def lines_in_use(self) -> set[int]:
        """Lines with calls not yet over."""
        return {
            call.line_id
            for call in self.calls.values()
            if call.line_id is not None and call.phase not in ("ended", "missed")
        }

    def agents_with_calls(self) -> set[int]:
        """Agents holding a call not yet over (an offer, a call, a forward)."""
        return {
            call.agent_id
            for call in self.calls.values()
            if call.agent_id is not None and call.phase not in ("ended", "missed")
        }

    def logged_in(self) -> list[int]:
        return [
            a.agent_id for a in self.agents.values() if a.status.state != ag.AgentState.LOGGED_OUT
        ]


def _delegate(name: str) -> property:
    """A ``Distributor`` attribute that is ``AcdState``'s (kept for the code and tests that
    read ``distributor.calls`` and friends)."""
    return property(
        lambda self: getattr(self.state, name),
        lambda self, value: setattr(self.state, name, value),
        doc=f"``AcdState.{name}``",
    )


class StateAttributes:
    """``Distributor.calls`` etc.: the fields of its ``AcdState``."""

    state: AcdState
    if TYPE_CHECKING:
        agents: dict[int, LiveAgent]
        calls: dict[int, LiveCall]
        by_channel: dict[str, int]
        line_priorities: dict[int, int]
        line_info: dict[int, tuple[str, str, int]]
        line_routes: dict[int, LineRoute]
        callback_routes: dict[int, LineRoute]
        missed: dict[int, tuple[int | None, str, dt.datetime]]
        pause_reasons: list[tuple[str, str]]
    else:
        agents = _delegate("agents")
        calls = _delegate("calls")
        by_channel = _delegate("by_channel")
        line_priorities = _delegate("line_priorities")
        line_info = _delegate("line_info")
        line_routes = _delegate("line_routes")
        callback_routes = _delegate("callback_routes")
        missed = _delegate("missed")
        pause_reasons = _delegate("pause_reasons")
