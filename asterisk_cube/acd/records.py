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
from asterisk_cube.db.executemany import executemany
from asterisk_cube.db.journal import BatchedCall, batched

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
_STATUS_INSERT = _STATUS.insert()
_STATE_LOG_INSERT = _STATE_LOG.insert()


def _run(s: Session, statement: Any, params: Any = None) -> Any:
    """Execute a Core statement on the session's connection (its transaction): the ORM
    session's own ``execute`` adds ~30 us of per-statement work these writes do not need
    (issue #19: about ten of them per call, in the journal's worker). Objects the session
    holds unflushed are flushed first, as its autoflush would (a no-op when clean)."""
    s.flush()
    if isinstance(params, list):  # many rows: SQL compiled once, the driver's executemany
        return executemany(s.connection(), statement, params)
    return s.connection().execute(statement, params)


def persist_agents(s: Session, calls: list[BatchedCall]) -> None:
    """Every ``persist_agent`` of one journal batch: the last status of each agent (one
    executemany UPDATE; an INSERT for an agent without a row yet) and every state-log
    record in one executemany INSERT. Nothing else in a batch reads these rows."""
    last: dict[int, dict[str, object]] = {}
    log_rows = []
    for _fn, args, kwargs in calls:
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
            _run(s, _STATUS_INSERT, missing)
    if log_rows:
        _run(s, _STATE_LOG_INSERT, log_rows)


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
    persist_agents(s, [(persist_agent, (agent_id, status, card_call_id, record, now, node), {})])


# --- a call's records: rows per operation, written one by one or a batch's together ---

Rows = list[tuple[Any, dict[str, Any]]]  # (prebuilt statement, its parameters)
#: the inserts in the order their foreign keys need (a leg, offer or missed call's call)
_INSERTS = (_CALL_INSERT, _LEG_INSERT, _OFFER_INSERT, _MISSED_INSERT)
#: an update's row key; ``_LEG_END`` only ends a leg not yet ended: the first one wins
_UPDATE_KEYS = {_CALL_UPDATE: "b_call_id", _OFFER_END: "b_offer_id", _LEG_END: "b_channel_id"}


def _write_rows(s: Session, rows: Rows) -> None:
    for statement, params in rows:
        _run(s, statement, params)


def _same_columns(table: Any, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """An insert's rows as runs that one executemany takes (the same columns each), in
    order: a column a row leaves out gets what the insert would give it (its scalar
    default, or NULL), unless that is computed (then the run splits there)."""
    if not rows:
        return []
    columns = list(dict.fromkeys(k for row in rows for k in row))
    fill: dict[str, Any] = {}
    for name in columns:
        column = table.c[name]
        if column.server_default is not None:
            continue
        if column.default is None:
            fill[name] = None
        elif column.default.is_scalar:
            fill[name] = column.default.arg
    runs: list[list[dict[str, Any]]] = []
    shape: frozenset[str] | None = None
    for row in rows:
        full = {**{k: v for k, v in fill.items() if k not in row}, **row}
        if frozenset(full) != shape:
            shape = frozenset(full)
            runs.append([])
        runs[-1].append(full)
    return runs


def write_records(s: Session, calls: list[BatchedCall]) -> None:
    """Every call-record write of one journal batch (issue #19: about ten statements per
    call, each executed on its own): the inserts of each table in one executemany, in
    queue order and foreign-key order; then each row's updates merged in queue order into
    one (the same final values: they set constants), one executemany per statement and
    column set. Flushed by the journal before any other operation of the batch runs."""
    inserts: dict[Any, list[dict[str, Any]]] = {statement: [] for statement in _INSERTS}
    updates: dict[tuple[Any, Any], dict[str, Any]] = {}
    for fn, args, kwargs in calls:
        for statement, params in _ROWS[fn](*args, **kwargs):
            if statement in inserts:
                inserts[statement].append(params)
                continue
            key = (statement, params[_UPDATE_KEYS[statement]])
            merged = updates.get(key)
            if merged is None:
                updates[key] = dict(params)
            elif statement is not _LEG_END:
                merged.update(params)
    for statement, rows in inserts.items():
        for run in _same_columns(statement.table, rows):
            _run(s, statement, run)
    grouped: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = {}
    for (statement, _key), params in updates.items():
        grouped.setdefault((statement, tuple(sorted(params))), []).append(params)
    for (statement, _columns), rows in grouped.items():
        _run(s, statement, rows)


def _arrival_rows(call: dict, channel_id: str, at: dt.datetime) -> Rows:
    leg = dict(call_id=call["id"], role=m.LegRole.CALLER, channel_id=channel_id, started_at=at)
    return [(_CALL_INSERT, call), (_LEG_INSERT, leg)]


def _update_call_rows(call_id: int, **values: Any) -> Rows:
    return [(_CALL_UPDATE, {"b_call_id": call_id, **values})]


def _offer_rows(offer_id: int, call_id: int, agent_id: int, at: dt.datetime) -> Rows:
    offer = dict(
        id=offer_id,
        call_id=call_id,
        agent_id=agent_id,
        offered_at=at,
        result=m.OfferResult.PENDING,
    )
    return [(_OFFER_INSERT, offer), *_update_call_rows(call_id, state=m.CallState.OFFERED)]


def _end_offer_rows(offer_id: int, result: m.OfferResult, at: dt.datetime) -> Rows:
    return [(_OFFER_END, dict(b_offer_id=offer_id, result=result, decided_at=at))]


def _end_leg_rows(channel_id: str, at: dt.datetime, cause: str) -> Rows:
    return [(_LEG_END, dict(b_channel_id=channel_id, ended_at=at, cause=cause))]


def _missed_rows(
    missed_id: int, call_id: int, line_id: int | None, caller: str, at: dt.datetime
) -> Rows:
    missed = dict(
        id=missed_id, call_id=call_id, line_id=line_id, caller_number=caller, missed_at=at
    )
    return [(_MISSED_INSERT, missed)]


def _agent_leg_rows(
    call_id: int, channel_id: str, endpoint: str, agent_id: int, at: dt.datetime
) -> Rows:
    leg = dict(
        call_id=call_id,
        role=m.LegRole.AGENT,
        channel_id=channel_id,
        endpoint=endpoint,
        agent_id=agent_id,
        started_at=at,
        answered_at=at,
    )
    return [(_LEG_INSERT, leg)]


@batched(write_records, ordered=True)
def insert_arrival(s: Session, call: dict, channel_id: str, at: dt.datetime) -> None:
    """A caller entered the app: its call row (id allocated beforehand) and caller leg."""
    _write_rows(s, _arrival_rows(call, channel_id, at))


def create_contact(s: Session, call_id: int, campaign_id: int, phone: str) -> int:
    """A hotline's new caller becomes a contact of its campaign (F-I3); returns its id."""
    contact = m.Contact(campaign_id=campaign_id, phone=phone, status=m.ContactStatus.NEW)
    s.add(contact)
    s.flush()
    update_call(s, call_id, contact_id=contact.id)
    return contact.id


@batched(write_records, ordered=True)
def update_call(s: Session, call_id: int, **values) -> None:
    _write_rows(s, _update_call_rows(call_id, **values))


@batched(write_records, ordered=True)
def insert_offer(s: Session, offer_id: int, call_id: int, agent_id: int, at: dt.datetime) -> None:
    _write_rows(s, _offer_rows(offer_id, call_id, agent_id, at))


@batched(write_records, ordered=True)
def end_offer(s: Session, offer_id: int, result: m.OfferResult, at: dt.datetime) -> None:
    _write_rows(s, _end_offer_rows(offer_id, result, at))


@batched(write_records, ordered=True)
def end_leg(s: Session, channel_id: str, at: dt.datetime, cause: str) -> None:
    _write_rows(s, _end_leg_rows(channel_id, at, cause))


@batched(write_records, ordered=True)
def insert_missed(
    s: Session, missed_id: int, call_id: int, line_id: int | None, caller: str, at: dt.datetime
) -> None:
    _write_rows(s, _missed_rows(missed_id, call_id, line_id, caller, at))


@batched(write_records, ordered=True)
def insert_agent_leg(
    s: Session, call_id: int, channel_id: str, endpoint: str, agent_id: int, at: dt.datetime
) -> None:
    _write_rows(s, _agent_leg_rows(call_id, channel_id, endpoint, agent_id, at))


#: each batched record operation's rows (``write_records``)
_ROWS: dict[Callable, Callable[..., Rows]] = {
    insert_arrival: _arrival_rows,
    update_call: _update_call_rows,
    insert_offer: _offer_rows,
    end_offer: _end_offer_rows,
    end_leg: _end_leg_rows,
    insert_missed: _missed_rows,
    insert_agent_leg: _agent_leg_rows,
}


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
