"""One queue across nodes (issue #14): the pure parts of the global waiting mirror.

Each node announces its calls' queue events on the PostgreSQL channel
``asterisk_cube_queue`` (a call starts waiting, is offered, connected, ends) and keeps a
**mirror** of the other live nodes' waiting calls, fed only by those notifications (read
once at start): no polling and no read on the call path. Routing
(``core.routing.assignments``) is fed with local and mirrored calls; a decision for a
mirrored call is confirmed by a conditional claim (``acd/crossnode_claims.py``: ``UPDATE
calls ... WHERE id = :c AND state = 'waiting'``; 0 rows: someone else took it, the mirror
drops it). See docs/architecture.md, "One queue across nodes".

Wired into ``serve`` by ``acd/crossnode.py`` (PostgreSQL only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from asterisk_cube.core.routing import CallType, WaitingCall

CHANNEL = "asterisk_cube_queue"
# the queue's life of a call: mirrors follow these
KINDS = ("waiting", "offered", "connected", "ended")
# between the call's node and the claimer (the agent's node): ``accept`` (ring my agent's
# phone ``endpoint`` for call ``call``), ``noanswer`` (it did not answer: the call waits
# again), ``hangup`` (the agent's desk hung up). Mirrors ignore them.
REQUESTS = ("accept", "noanswer", "hangup")
# a node's lease expired and a survivor took it over (node_takeover.py): its calls leave
# every mirror (call 0)
DOWN = "down"
# a node joined the queue (its mirror is loaded): the others announce their waiting calls
UP = "up"
MAX_PAYLOAD = 7999  # PostgreSQL's NOTIFY payload limit is 8000 bytes


@dataclass(frozen=True)
class QueueEvent:
    """One notification: ``<kind>|<call>|<line>|<type>|<queued_at>|<node>``; for an offer
    or a request ``|<agent>|<endpoint>``; for a waiting call that routing must match on
    more than its line also ``|<skill>|<campaign>|<last agent>`` (the skill URL-quoted).
    ``node`` is the call's node for ``waiting``, ``connected``, ``noanswer`` and ``ended``,
    and the claimer (the agent's node) for ``offered``, ``accept`` and ``hangup``."""

    kind: str
    call_id: int
    node: str
    line_id: int | None = None
    call_type: CallType = CallType.SERVICE
    queued_at: dt.datetime | None = None
    agent_id: int | None = None
    endpoint: str = ""
    # what routing matches besides the line: the campaign's skill (F-D2) and affinity
    # (F-I3: a customer calling back goes to the agent who last talked to them first)
    skill: str | None = None
    campaign_id: int | None = None
    last_agent_id: int | None = None


def encode(event: QueueEvent) -> str:
    queued = event.queued_at.astimezone(dt.UTC).isoformat() if event.queued_at else ""
    line = "" if event.line_id is None else str(event.line_id)
    # the ISO time has colons: it goes last but one, and the node name (a-z 0-9 - _) last
    payload = f"{event.kind}|{event.call_id}|{line}|{event.call_type.value}|{queued}|{event.node}"
    routing = (event.skill, event.campaign_id, event.last_agent_id)
    if event.agent_id is not None or event.endpoint or routing != (None, None, None):
        if "|" in event.endpoint:
            raise ValueError("an endpoint with '|' cannot be sent")
        payload += f"|{_num(event.agent_id)}|{event.endpoint}"
    if routing != (None, None, None):
        skill = "" if event.skill is None else quote(event.skill, safe="")
        payload += f"|{skill}|{_num(event.campaign_id)}|{_num(event.last_agent_id)}"
    if len(payload.encode()) > MAX_PAYLOAD:
        raise ValueError("queue event too long for NOTIFY")
    return payload


def decode(payload: str) -> QueueEvent | None:
    """The event, or None for a payload that is not one (never raises: it comes from the
    network)."""
    parts = (payload or "").split("|")
    if len(parts) not in (6, 8, 11):
        return None
    parts += [""] * (11 - len(parts))
    kind, call, line, ctype, queued, node, agent, endpoint, skill, campaign, last = parts
    if kind not in (*KINDS, *REQUESTS, DOWN, UP) or not call.isdigit() or not node:
        return None
    if any(n and not n.isdigit() for n in (line, agent, campaign, last)):
        return None
    try:
        call_type = CallType(ctype)
        queued_at = dt.datetime.fromisoformat(queued) if queued else None
    except ValueError:
        return None
    if queued_at is not None and queued_at.tzinfo is None:
        return None
    return QueueEvent(
        kind,
        int(call),
        node,
        int(line) if line else None,
        call_type,
        queued_at,
        int(agent) if agent else None,
        endpoint,
        unquote(skill) if skill else None,
        int(campaign) if campaign else None,
        int(last) if last else None,
    )


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


class WaitingMirror:
    """The other live nodes' waiting calls, as routing sees calls. Own events are ignored
    (the distributor holds its own calls); a call offered, connected or ended anywhere
    leaves the mirror; a node that goes down takes its calls out (no node can bridge
    them: its own ``recover()`` delivers them when it returns)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._calls: dict[int, tuple[str, WaitingCall]] = {}

    def apply(self, event: QueueEvent) -> bool:
        """Take one event; True if the mirror changed (a reason to route again)."""
        if event.node == self.me or event.kind in REQUESTS or event.kind == UP:
            return False
        if event.kind == DOWN:
            return self.node_down(event.node) > 0
        if event.kind != "waiting":
            return self._calls.pop(event.call_id, None) is not None
        if event.queued_at is None:
            return False
        call = WaitingCall(
            call_id=event.call_id,
            call_type=event.call_type,
            queued_at=event.queued_at,
            line_id=event.line_id,
            skill=event.skill,
            campaign_id=event.campaign_id,
            last_agent_id=event.last_agent_id,
        )
        self._calls[event.call_id] = (event.node, call)
        return True

    def load(self, events: Iterable[QueueEvent]) -> None:
        """At start: the waiting rows of the other live nodes, read once."""
        self._calls.clear()
        for event in events:
            self.apply(event)

    def drop(self, call_id: int) -> None:
        """A claim found the call no longer waiting: someone else took it."""
        self._calls.pop(call_id, None)

    def node_down(self, node: str) -> int:
        """``node``'s lease expired: its calls leave the mirror; how many did."""
        gone = [cid for cid, (owner, _) in self._calls.items() if owner == node]
        for call_id in gone:
            del self._calls[call_id]
        return len(gone)

    def node_of(self, call_id: int) -> str | None:
        entry = self._calls.get(call_id)
        return entry[0] if entry else None

    def waiting(self) -> list[WaitingCall]:
        """The mirrored calls, oldest first (routing orders them by line priority)."""
        return sorted((c for _, c in self._calls.values()), key=lambda c: c.queued_at)

    def __len__(self) -> int:
        return len(self._calls)
