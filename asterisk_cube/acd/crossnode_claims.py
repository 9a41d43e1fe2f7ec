"""One queue across nodes (issue #14): the claim that confirms a routing decision for a
call of another node (core/queue_mirror.py) and its undo when the claimer died.

A claim is one conditional UPDATE, no lock held: ``state = 'waiting'`` in the WHERE makes
it succeed for exactly one node; 0 rows means someone else took the call (or it ended),
and the mirror drops it. Not wired into ``serve`` yet (docs/architecture.md).
"""

from __future__ import annotations

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from asterisk_cube.core.queue_mirror import CHANNEL, QueueEvent, encode
from asterisk_cube.db import models as m


def announce(s: Session, event: QueueEvent) -> bool:
    """NOTIFY the other nodes of ``event`` when ``s`` commits (PostgreSQL; False and
    nothing sent on another database: a single node needs no mirror)."""
    if s.get_bind().dialect.name != "postgresql":
        return False
    s.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": encode(event)}
    )
    return True


def claim(s: Session, call_id: int, agent_id: int, node: str) -> bool:
    """Offer waiting call ``call_id`` to ``agent_id`` of ``node``; False if it was not
    waiting any more (claimed elsewhere, connected or ended)."""
    result = s.execute(
        update(m.Call)
        .where(m.Call.id == call_id, m.Call.state == m.CallState.WAITING)
        .values(state=m.CallState.OFFERED, agent_id=agent_id, offer_node=node)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def unclaim(s: Session, call_id: int, node: str) -> bool:
    """The claimer's offer was not taken (declined, timed out): the call waits again."""
    result = s.execute(
        update(m.Call)
        .where(
            m.Call.id == call_id,
            m.Call.state == m.CallState.OFFERED,
            m.Call.offer_node == node,
        )
        .values(state=m.CallState.WAITING, agent_id=None, offer_node=None)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def return_dead_claims(s: Session, dead: str) -> int:
    """At takeover of ``dead`` (its lease expired): its offers on other nodes' calls wait
    again; how many."""
    result = s.execute(
        update(m.Call)
        .where(
            m.Call.state == m.CallState.OFFERED,
            m.Call.offer_node == dead,
            m.Call.node != dead,
        )
        .values(state=m.CallState.WAITING, agent_id=None, offer_node=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
