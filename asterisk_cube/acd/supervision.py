"""What the supervisor panel reads from the call distributor, and the event that says so.

The distributor publishes :class:`PanelChanged` whenever its live state changes (a call
arrives, is offered, answered or leaves; an agent changes state or lines; priorities are
reloaded). The panel then reads one :class:`AcdSnapshot` (``Distributor.panel_snapshot``:
in-memory, no database access) and pushes what changed to the supervisors' browsers.

Supervisor actions reuse the desk operations on behalf of an agent (``choose_lines``,
``ready``), ``force_pause`` (any known reason, "supervisor" by default) and
``lines_changed`` after a line's priority was changed in the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from asterisk_cube.events import Event


@dataclass(frozen=True)
class PanelChanged(Event):
    """The distributor's live state changed (agents, waiting or connected calls, lines)."""


@dataclass(frozen=True)
class AgentRow:
    agent_id: int
    username: str
    name: str
    role: str
    endpoint: str | None
    state: str  # logged_out | ready | offered | busy | wrap_up | paused
    since: dt.datetime | None
    pause_reason: str | None
    pause_requested: str | None
    wrap_up_until: dt.datetime | None
    chosen: tuple[int, ...]  # lines staffed now
    permitted: tuple[int, ...]
    blocked: bool  # outbound call or the dialer dialing for it (F-I5)
    call_id: int | None  # the call it is offered, talking on, or wrapping up


@dataclass(frozen=True)
class CallRow:
    call_id: int
    direction: str  # inbound | outbound
    kind: str  # customer_callback | new_customer | service | answering, or the dial mode
    phase: str  # waiting | offered | connecting | connected | ended
    line_id: int | None
    campaign_id: int | None
    caller: str
    did: str
    queued_at: dt.datetime
    offered_at: dt.datetime | None
    answered_at: dt.datetime | None
    agent_id: int | None
    channel_id: str


@dataclass(frozen=True)
class LineRow:
    line_id: int
    did: str
    name: str
    priority: int
    waiting: int  # waiting or being offered
    oldest_queued_at: dt.datetime | None
    staffed: int  # logged-in agents who chose it
    ready: int  # of those, ready now


@dataclass(frozen=True)
class AcdSnapshot:
    at: dt.datetime
    agents: tuple[AgentRow, ...]
    lines: tuple[LineRow, ...]
    calls: tuple[CallRow, ...]


class Supervision(Protocol):
    """The distributor as the panel uses it (``acd.distributor.Distributor``)."""

    def panel_snapshot(self) -> AcdSnapshot: ...

    def lines_changed(self) -> None:
        """Line rows changed in the database (priority): reload and route by them."""

    async def choose_lines(self, agent_id: int, line_ids: list[int]) -> None: ...

    async def force_pause(self, agent_id: int, reason: str = "supervisor") -> None: ...

    async def ready(self, agent_id: int) -> None: ...
