"""One queue across nodes (issue #14): the claim that confirms a routing decision for a
call of another node (core/queue_mirror.py) and its undo when the claimer died.

A claim is one conditional UPDATE, no lock held: ``state = 'waiting'`` in the WHERE makes
it succeed for exactly one node; 0 rows means someone else took the call (or it ended),
and the mirror drops it. Wired into the distributor by ``acd/crossnode.py``
(docs/architecture.md, "One queue across nodes").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, object_session

from asterisk_cube.core.queue_mirror import CHANNEL, QueueEvent, encode
from asterisk_cube.core.routing import CallType
from asterisk_cube.db import models as m

_TYPES = {
    m.CallKind.CUSTOMER_CALLBACK: CallType.CUSTOMER_CALLBACK,
    m.CallKind.NEW_CUSTOMER: CallType.NEW_CUSTOMER,
    m.CallKind.SERVICE: CallType.SERVICE,
    m.CallKind.ANSWERING: CallType.ANSWERING,
}


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
    return claim_returning(s, call_id, agent_id, node) is not None


def claim_returning(s: Session, call_id: int, agent_id: int, node: str) -> Any:
    """``claim``, returning what the claimer shows on its agent's card (caller, dialed
    number, client, campaign, contact, kind) from the same statement; None: not claimed."""
    return s.execute(
        update(m.Call)
        .where(m.Call.id == call_id, m.Call.state == m.CallState.WAITING)
        .values(state=m.CallState.OFFERED, agent_id=agent_id, offer_node=node)
        .returning(
            m.Call.caller_number,
            m.Call.dialed_number,
            m.Call.client_id,
            m.Call.campaign_id,
            m.Call.contact_id,
            m.Call.kind,
        )
        .execution_options(synchronize_session=False)
    ).first()


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


def give_back(s: Session, call_id: int, node: str, event: QueueEvent) -> None:
    """``unclaim`` and, if it was still ours, announce ``event`` (it waits again). A
    journal operation."""
    if unclaim(s, call_id, node):
        announce(s, event)


def requeue(s: Session, call_id: int, event: QueueEvent, *notices: QueueEvent) -> None:
    """The call's own node puts its call back in the queue (the other node's agent did not
    answer): the row waits again and ``event`` (``waiting``) and ``notices`` are announced
    on commit. A journal operation (``op(session, ...)``)."""
    s.execute(
        update(m.Call)
        .where(m.Call.id == call_id)
        .values(state=m.CallState.WAITING, agent_id=None, offer_node=None)
        .execution_options(synchronize_session=False)
    )
    for one in (event, *notices):
        announce(s, one)


def waiting_event(row: m.Call) -> QueueEvent:
    """The ``waiting`` announcement of a call row, with what routing matches on besides
    its line (as ``acd/recovery`` restores a call: the campaign's skill, and the contact's
    last agent for a customer calling back)."""
    s = object_session(row)
    campaign = s.get(m.Campaign, row.campaign_id) if s is not None and row.campaign_id else None
    call_type = _TYPES.get(row.kind, CallType.SERVICE)
    contact = (
        s.get(m.Contact, row.contact_id)
        if s is not None and row.contact_id and call_type == CallType.CUSTOMER_CALLBACK
        else None
    )
    return QueueEvent(
        "waiting",
        row.id,
        row.node or "",
        row.line_id,
        call_type,
        row.queued_at,
        skill=campaign.skill.name if campaign and campaign.skill else None,
        campaign_id=row.campaign_id,
        last_agent_id=contact.last_agent_id if contact else None,
    )


def waiting_elsewhere(s: Session, me: str, live: list[str]) -> list[QueueEvent]:
    """At start: the waiting calls of the other live nodes (the mirror's one read)."""
    rows = s.scalars(
        select(m.Call).where(
            m.Call.state == m.CallState.WAITING,
            m.Call.node != me,
            m.Call.node.in_(live),
            m.Call.queued_at.is_not(None),
        )
    ).all()
    return [waiting_event(row) for row in rows]


def return_dead_claims(s: Session, dead: str) -> int:
    """At takeover of ``dead`` (its lease expired): its offers on other nodes' calls wait
    again, and each is announced ``waiting`` (its node and the mirrors put it back in the
    queue); how many."""
    rows = s.scalars(
        select(m.Call)
        .where(
            m.Call.state == m.CallState.OFFERED,
            m.Call.offer_node == dead,
            m.Call.node != dead,
        )
        .with_for_update()
    ).all()
    for row in rows:
        row.state, row.agent_id, row.offer_node = m.CallState.WAITING, None, None
        if row.queued_at is not None and row.node:
            announce(s, waiting_event(row))
    s.flush()
    return len(rows)
