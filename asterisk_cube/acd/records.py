"""What the call distributor writes to the database, as plain functions of a session.

The distributor queues these on its write-behind journal (:mod:`asterisk_cube.db.journal`)
with the values of the moment (``functools.partial``), never live objects, so the
worker thread that writes them reads nothing the event loop may be changing. The
database is the record of what happened (reports, restart recovery); the distributor's
memory is what decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam
from sqlalchemy.orm import Session

from asterisk_cube.core import agents as ag
from asterisk_cube.db import models as m
from asterisk_cube.db.base import table_of
from asterisk_cube.db.journal import batched

_CALLS = table_of(m.Call)
_LEGS = table_of(m.CallLeg)
_OFFERS = table_of(m.CallOffer)
_MISSED = table_of(m.MissedCall)
_STATUS = table_of(m.AgentStatus)
_STATE_LOG = table_of(m.AgentStateLog)
_CONTACTS = table_of(m.Contact)


def _status_values(
    status: ag.AgentStatus, card_call_id: int | None, now: dt.datetime, node: str | None
) -> dict[str, object]:
    return dict(
        node=node,
        state=m.AgentState(status.state.value),
        since=status.since or now,
        pause_reason=status.pause_reason,
        pause_requested=status.pause_requested,
        wrap_up_until=status.wrap_up_until,
        call_id=card_call_id,
        idle_since=status.idle_since,
    )


def _log_row(agent_id: int, record: ag.StateLogRecord | None) -> dict[str, object] | None:
    if record is None or record.from_state == record.to_state:
        return None
    return dict(
        agent_id=agent_id,
        at=record.at,
        from_state=m.AgentState(record.from_state.value),
        to_state=m.AgentState(record.to_state.value),
        reason=record.reason,
    )


# Built once (issue #19): building update().where().values() per write cost SQLAlchemy
# more than executing it; the SET/VALUES columns come from each execution's parameters.
_STATUS_UPDATE = _STATUS.update().where(_STATUS.c.agent_id == bindparam("b_agent_id"))
_CALL_INSERT = _CALLS.insert()
_CALL_UPDATE = _CALLS.update().where(_CALLS.c.id == bindparam("b_call_id"))
_LEG_INSERT = _LEGS.insert()
_LEG_END = _LEGS.update().where(
    _LEGS.c.channel_id == bindparam("b_channel_id"), _LEGS.c.ended_at.is_(None)
)
_OFFER_INSERT = _OFFERS.insert()
_OFFER_END = _OFFERS.update().where(_OFFERS.c.id == bindparam("b_offer_id"))
_MISSED_INSERT = _MISSED.insert()


def _run(s: Session, statement: Any, params: Any = None) -> Any:
    """Execute a Core statement on the session's connection (its transaction): the ORM
    session's own ``execute`` adds ~30 us of per-statement work these writes do not need
    (issue #19: about ten of them per call, in the journal's worker). Objects the session
    holds unflushed are flushed first, as its autoflush would (a no-op when clean)."""
    s.flush()
    return s.connection().execute(statement, params)


def persist_agents(s: Session, calls: list[tuple[tuple, dict]]) -> None:
    """Every ``persist_agent`` of one journal batch: the last status of each agent (one
    executemany UPDATE; an INSERT for an agent without a row yet) and every state-log
    record in one executemany INSERT. Nothing else in a batch reads these rows."""
    last: dict[int, dict[str, object]] = {}
    log_rows = []
    for args, kwargs in calls:
        agent_id, status, card_call_id, record, now, node = _agent_args(*args, **kwargs)
        last[agent_id] = _status_values(status, card_call_id, now, node)
        row = _log_row(agent_id, record)
        if row is not None:
            log_rows.append(row)
    params = [{"b_agent_id": agent_id, **values} for agent_id, values in last.items()]
    done = cast(CursorResult[Any], _run(s, _STATUS_UPDATE, params))  # an UPDATE's
    if done.rowcount != len(params):  # some agent has no status row yet (rare)
        have: set[int] = set(s.scalars(_STATUS.select().with_only_columns(_STATUS.c.agent_id)))
        missing = [{"agent_id": a, **v} for a, v in last.items() if a not in have]
        if missing:
            _run(s, _STATUS.insert(), missing)
    if log_rows:
        _run(s, _STATE_LOG.insert(), log_rows)


def _agent_args(
    agent_id: int,
    status: ag.AgentStatus,
    card_call_id: int | None,
    record: ag.StateLogRecord | None,
    now: dt.datetime,
    node: str | None = None,
) -> tuple[int, ag.AgentStatus, int | None, ag.StateLogRecord | None, dt.datetime, str | None]:
    """A queued ``persist_agent`` call's arguments, however they were passed."""
    return agent_id, status, card_call_id, record, now, node


@batched(persist_agents)
def persist_agent(
    s: Session,
    agent_id: int,
    status: ag.AgentStatus,
    card_call_id: int | None,
    record: ag.StateLogRecord | None,
    now: dt.datetime,
    node: str | None = None,
) -> None:
    """The agent's current status row, and the state-time log record of the change
    (queued on the journal: written with the batch's others by :func:`persist_agents`).
    ``node``: the node that made the change, the one the agent works on (issue #14)."""
    persist_agents(s, [((agent_id, status, card_call_id, record, now, node), {})])


def insert_arrival(s: Session, call: dict, channel_id: str, at: dt.datetime) -> None:
    """A caller entered the app: its call row (id allocated beforehand) and caller leg."""
    _run(s, _CALL_INSERT, call)
    _run(
        s,
        _LEG_INSERT,
        dict(call_id=call["id"], role=m.LegRole.CALLER, channel_id=channel_id, started_at=at),
    )


def create_contact(s: Session, call_id: int, campaign_id: int, phone: str) -> int:
    """A hotline's new caller becomes a contact of its campaign (F-I3); returns its id."""
    contact = m.Contact(campaign_id=campaign_id, phone=phone, status=m.ContactStatus.NEW)
    s.add(contact)
    s.flush()
    update_call(s, call_id, contact_id=contact.id)
    return contact.id


def update_call(s: Session, call_id: int, **values) -> None:
    _run(s, _CALL_UPDATE, {"b_call_id": call_id, **values})


def insert_offer(s: Session, offer_id: int, call_id: int, agent_id: int, at: dt.datetime) -> None:
    _run(
        s,
        _OFFER_INSERT,
        dict(
            id=offer_id,
            call_id=call_id,
            agent_id=agent_id,
            offered_at=at,
            result=m.OfferResult.PENDING,
        ),
    )
    update_call(s, call_id, state=m.CallState.OFFERED)


def end_offer(s: Session, offer_id: int, result: m.OfferResult, at: dt.datetime) -> None:
    _run(s, _OFFER_END, dict(b_offer_id=offer_id, result=result, decided_at=at))


def end_leg(s: Session, channel_id: str, at: dt.datetime, cause: str) -> None:
    _run(s, _LEG_END, dict(b_channel_id=channel_id, ended_at=at, cause=cause))


def insert_missed(
    s: Session, missed_id: int, call_id: int, line_id: int | None, caller: str, at: dt.datetime
) -> None:
    _run(
        s,
        _MISSED_INSERT,
        dict(id=missed_id, call_id=call_id, line_id=line_id, caller_number=caller, missed_at=at),
    )


def insert_agent_leg(
    s: Session, call_id: int, channel_id: str, endpoint: str, agent_id: int, at: dt.datetime
) -> None:
    _run(
        s,
        _LEG_INSERT,
        dict(
            call_id=call_id,
            role=m.LegRole.AGENT,
            channel_id=channel_id,
            endpoint=endpoint,
            agent_id=agent_id,
            started_at=at,
            answered_at=at,
        ),
    )


def insert_contact_leg(
    s: Session, call_id: int, channel_id: str, number: str, at: dt.datetime
) -> None:
    """The answered leg to the person called (a missed-call callback's customer)."""
    _run(
        s,
        _LEGS.insert().values(
            call_id=call_id,
            role=m.LegRole.CONTACT,
            channel_id=channel_id,
            endpoint=number,
            started_at=at,
            answered_at=at,
        ),
    )


def set_last_agent(s: Session, contact_id: int, agent_id: int) -> None:
    _run(s, _CONTACTS.update().where(_CONTACTS.c.id == contact_id).values(last_agent_id=agent_id))


@dataclass(frozen=True)
class Write:
    """One queued ``acd.records`` call: ``op(session, *args, **kwargs)``."""

    op: Callable
    args: tuple
    kwargs: dict

    def __call__(self, s: Session):
        return self.op(s, *self.args, **self.kwargs)

    def __repr__(self) -> str:  # named in the journal's error log
        return f"{self.op.__qualname__}{self.args!r}"
