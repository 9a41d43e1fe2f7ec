"""What the agent desktop may ask of the call distributor, and what it gets back.

The web layer (desktop pages, JSON API, SSE push) depends only on this module:
``AgentDesk`` is implemented by the live distributor (``acd.distributor``) and by
an in-memory fake in the tests. Every refusal is a ``Refused`` with a reason key
(for translation) and a message; a refused request changes nothing.

Push: whenever something an agent sees changes, the distributor publishes
``AgentViewChanged(agent_id)`` on the event hub; the desktop's SSE stream then
sends the fresh ``AgentView``. Supervisors' views (panel) use their own events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Protocol

from asterisk_cube.events import Event


class Refused(Exception):
    """A request the distributor will not carry out. ``reason`` is a stable key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# Reason keys (the web layer translates them).
NOT_FOUND = "not_found"  # no such call/contact/missed call, or not this agent's
NOT_PERMITTED = "not_permitted"  # e.g. choosing a line the agent may not serve
ILLEGAL_STATE = "illegal_state"  # e.g. accept while not offered
REGISTRATION_REQUIRED = "registration_required"  # forced registration (F-E2)
INVALID = "invalid"  # malformed input (names the field)
OTHER_NODE = "other_node"  # logged in on another node (issue #14); ``node`` names it


@dataclass(frozen=True)
class LineView:
    line_id: int
    did: str
    name: str
    priority: int
    chosen: bool  # the agent staffs it now (F-I2)
    waiting: int  # calls waiting on it, shown even while blocked (F-I5)
    longest_wait_s: float


@dataclass(frozen=True)
class ContactView:
    contact_id: int
    phone: str
    name: str | None
    company: str | None
    email: str | None
    campaign: str | None
    status: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicView:
    topic_id: int
    name: str


@dataclass(frozen=True)
class CategoryView:
    category_id: int
    name: str
    multi: bool
    campaign: str | None  # set for campaign categories (F-E4)
    topics: list[TopicView]


@dataclass(frozen=True)
class OfferView:
    call_id: int
    line: str  # line name
    did: str
    caller: str
    kind: str  # customer_callback | new_customer | service | answering
    offered_at: dt.datetime
    expires_at: dt.datetime
    comment: str = ""  # scheduled-callback comment (F-E6)


@dataclass(frozen=True)
class ForwardView:
    """An answering-service forward in progress (F-S2): announce, then connect."""

    status: str  # ringing | announcing | failed (take a note) | connected (handed over)
    target: str  # the number or phone being tried
    attempt: int  # 1 = first target, 2 = second target
    attempts: int  # how many targets there are


@dataclass(frozen=True)
class CallView:
    """The screen pop (F-I6) and enquiry form (F-E1/E2) of the agent's current call."""

    call_id: int
    state: str  # connecting | connected | ended (still open for registration)
    line: str
    did: str
    caller: str
    kind: str
    campaign: str | None
    client_id: int | None  # answering-service client: the desktop shows its script
    contacts: list[ContactView]  # matching the caller's number
    contact_id: int | None  # the contact chosen/created for this call
    categories: list[CategoryView]
    registration_required: bool  # forced registration (F-E2)
    registered: bool
    answered_at: dt.datetime | None
    comment: str = ""
    hours: str = ""  # answering service: open | closed | holiday when the call came in
    forward: ForwardView | None = None
    notes: int = 0  # call notes taken on this call (F-S9)


@dataclass(frozen=True)
class MissedCallView:
    missed_id: int
    line: str
    caller: str
    missed_at: dt.datetime


@dataclass(frozen=True)
class AgentView:
    agent_id: int
    username: str
    name: str
    role: str
    state: str  # logged_out | ready | offered | busy | wrap_up | paused
    since: dt.datetime
    pause_reason: str | None
    wrap_up_until: dt.datetime | None
    blocked: bool  # inbound blocked: outbound call or dialer dialing for it (F-I5)
    lines: list[LineView]
    offer: OfferView | None
    call: CallView | None
    missed: list[MissedCallView]
    pause_reasons: list[tuple[str, str]]  # (code, label) the agent may choose
    pause_requested: str | None = None  # a pause taken after the current call / wrap-up

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (datetimes as ISO text, tuples as lists). Walks the
        fields itself: ``dataclasses.asdict`` deep-copies every value first, and this
        runs for every pushed view (issue #19)."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    names = _FIELDS.get(type(value))
    if names is None and is_dataclass(value):
        names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    return value


_FIELDS: dict[type, tuple[str, ...]] = {}  # a view dataclass -> its field names


@dataclass(frozen=True)
class AgentViewChanged(Event):
    """Something this agent sees changed: push a fresh view."""

    agent_id: int


@dataclass(frozen=True)
class LineCount:
    """One line's queue as a desk shows it (``LineView.waiting`` / ``longest_wait_s``)."""

    line_id: int
    waiting: int
    longest_wait_s: float


@dataclass(frozen=True)
class DeskLineCount(Event):
    """Only the queue of one of this agent's lines changed: push the count, not a fresh
    view (issue #19: an arrival re-rendered every desk showing the line). Agents with the
    same count share one ``count`` object, so the push serialises it once."""

    agent_id: int
    count: LineCount


class AgentDesk(Protocol):
    """The agent-facing operations. ``agent_id`` is the logged-in user (the web layer
    authenticates); every call/contact/missed id is checked to belong to that agent."""

    async def view(self, agent_id: int) -> AgentView: ...

    async def check_owner(self, agent_id: int) -> None:
        """Refused ``other_node`` (409) when the agent works on another live node."""

    async def login(self, agent_id: int) -> None:
        """Start work: logged_out -> paused('login') until lines are chosen and ready."""

    async def logout(self, agent_id: int) -> None: ...

    async def choose_lines(self, agent_id: int, line_ids: list[int]) -> None:
        """F-I2: the lines this agent serves now (subset of its permitted lines)."""

    async def ready(self, agent_id: int) -> None: ...

    async def pause(self, agent_id: int, reason: str) -> None:
        """Pause now, or after wrap-up/the current call if busy (never strands a call)."""

    async def cancel_pause(self, agent_id: int) -> None:
        """Take back a pause requested for after the current call / wrap-up."""

    async def accept(self, agent_id: int, call_id: int) -> None:
        """F-I4: accept the offered call; the app then rings the agent's phone and bridges."""

    async def decline(self, agent_id: int, call_id: int) -> None: ...

    async def hangup(self, agent_id: int, call_id: int) -> None:
        """End the agent's current call from the desktop."""

    async def finish_wrap_up(self, agent_id: int) -> None: ...

    async def extend_wrap_up(self, agent_id: int, seconds: int) -> None: ...

    async def register_enquiry(
        self, agent_id: int, call_id: int, topic_ids: list[int], comment: str
    ) -> None:
        """F-E1/E2: store the registration; single-choice categories take one topic."""

    async def close_call(self, agent_id: int, call_id: int) -> None:
        """Close the call's card; refused with REGISTRATION_REQUIRED if forced and missing."""

    async def search_contacts(self, agent_id: int, query: str) -> list[ContactView]: ...

    async def attach_contact(self, agent_id: int, call_id: int, contact_id: int) -> None:
        """Open an existing contact for this call (screen pop, F-I6)."""

    async def create_contact(
        self, agent_id: int, call_id: int, name: str, phone: str, company: str, email: str
    ) -> ContactView:
        """Create a contact for the caller when none matches (F-I6)."""

    async def callback_missed(self, agent_id: int, missed_id: int) -> None:
        """F-I7: ring the agent first, then the customer."""

    async def mark_missed_processed(self, agent_id: int, missed_id: int) -> None: ...

    async def forward(self, agent_id: int, call_id: int, employee_id: int | None) -> None:
        """F-S2/F-S4: announce the call to the employee's (or the client's) first target,
        falling back to the second; the targets come from the client's configuration."""

    async def forward_connect(self, agent_id: int, call_id: int) -> None:
        """Hand the caller over to the target the agent is announcing to."""

    async def forward_cancel(self, agent_id: int, call_id: int) -> None:
        """Give up the forward and return to the caller (e.g. to take a note)."""

    async def take_note(
        self,
        agent_id: int,
        call_id: int,
        message: str,
        caller_name: str,
        callback_number: str,
        employee_id: int | None,
    ) -> None:
        """F-S9: a call note for the answering-service client, stored and e-mailed; the
        client's own numbers are refused as the callback number."""
