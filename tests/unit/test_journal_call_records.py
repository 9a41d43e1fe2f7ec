"""Issue #19: the call records of one journal batch (call rows, legs, offers, missed calls)
are written with one executemany per table and per update shape, not a statement per
write, and the rows are the same as writing each operation on its own, in order; on
SQLite and on PostgreSQL. An operation that is not batched still sees the rows queued
before it (create_contact updates the call row inserted in the same batch)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select

from asterisk_cube.acd import records as rec
from asterisk_cube.acd.records import Write
from asterisk_cube.db import models as m
from asterisk_cube.db.base import table_of
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
TABLES = (m.Call, m.CallLeg, m.CallOffer, m.MissedCall)  # (a contact: its created_at)


def world(url: str):
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        p.add_campaign(s, "Hot", direction="inbound")
        p.add_line(s, "100", "Support", priority=1)
        for name in ("ann", "bob"):
            p.add_agent(s, name, endpoint=f"PJSIP/{name}", lines=["100"])
    with transaction(sessions) as s:
        agents = list(s.scalars(select(m.Agent.id).order_by(m.Agent.id)))
        line = s.scalar(select(m.Line.id))
        campaign = s.scalar(select(m.Campaign.id))
    statements: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0].upper())
    )
    return engine, sessions, agents, line, campaign, statements


def operations(agents: list[int], line: int, campaign: int) -> list[Write]:
    """Three answered calls and one missed, interleaved as the distributor queues them."""
    ops: list[Write] = []

    def w(op, *args, **kwargs):
        ops.append(Write(op, args, kwargs))

    def at(seconds: float) -> dt.datetime:
        return T0 + dt.timedelta(seconds=seconds)

    for n in range(3):
        call_id, agent = 100 + n, agents[n % 2]
        row = dict(
            id=call_id,
            direction=m.Direction.INBOUND,
            kind=m.CallKind.SERVICE,
            state=m.CallState.WAITING,
            line_id=line,
            caller_number=f"9100000{n}",
            dialed_number="100",
            channel_id=f"caller-{n}",
            started_at=at(n),
            queued_at=at(n),
        )
        w(rec.insert_arrival, row, f"caller-{n}", at(n))
        w(rec.insert_offer, 200 + n, call_id, agent, at(n + 0.1))
        w(rec.end_offer, 200 + n, m.OfferResult.ACCEPTED, at(n + 0.2))
        w(rec.update_call, call_id, agent_id=agent)
    w(rec.create_contact, 100, campaign, "+4791000000")  # not batched: needs call 100
    for n in range(3):
        call_id, agent = 100 + n, agents[n % 2]
        w(
            rec.update_call,
            call_id,
            state=m.CallState.CONNECTED,
            answered_at=at(n + 1),
            agent_id=agent,
        )
        w(rec.insert_agent_leg, call_id, f"agent-{n}", f"PJSIP/{agent}", agent, at(n + 1))
    missed = dict(
        id=110,
        direction=m.Direction.INBOUND,
        kind=m.CallKind.SERVICE,
        state=m.CallState.WAITING,
        line_id=line,
        caller_number="91000009",
        dialed_number="100",
        channel_id="caller-9",
        started_at=at(4),
        queued_at=at(4),
    )
    w(rec.insert_arrival, missed, "caller-9", at(4))
    w(rec.end_leg, "caller-9", at(5), "hangup")
    w(rec.end_leg, "caller-9", at(6), "again")  # a leg already ended stays as it was
    w(
        rec.update_call,
        110,
        state=m.CallState.MISSED,
        ended_at=at(5),
        end_reason="caller_hangup_waiting",
    )
    w(rec.insert_missed, 300, 110, line, "91000009", at(5))
    for n in range(3):
        w(rec.end_leg, f"caller-{n}", at(n + 3), "hangup")
        w(rec.end_leg, f"agent-{n}", at(n + 3), "hangup")
        w(
            rec.update_call,
            100 + n,
            state=m.CallState.ENDED,
            ended_at=at(n + 3),
            end_reason="caller_hangup",
        )
    return ops


def dump(sessions) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with transaction(sessions) as s:
        for model in TABLES:
            table = table_of(model)
            rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def writes(statements: list[str]) -> int:
    return sum(1 for x in statements if x in ("INSERT", "UPDATE"))


async def one_batch_equals_one_by_one(url_batched: str, url_single: str) -> None:
    engine, sessions, agents, line, campaign, statements = world(url_batched)
    ops = operations(agents, line, campaign)
    journal = Journal(sessions, delay=60)
    for op in ops:
        journal.write(op)
    await journal.drain()  # one batch
    journal.close()
    assert journal.failures == 0
    batched_rows, batched_writes = dump(sessions), writes(statements)
    engine.dispose()

    engine, sessions, agents, line, campaign, statements = world(url_single)
    for op in operations(agents, line, campaign):
        with transaction(sessions) as s:
            op(s)
    single_rows, single_writes = dump(sessions), writes(statements)
    engine.dispose()

    assert batched_rows == single_rows
    assert len(batched_rows["calls"]) == 4 and len(batched_rows["call_legs"]) == 7
    # 36 writes one by one; batched: each table's inserts at most twice (before and after
    # the contact), the updates once per statement and column set
    assert single_writes >= 30, single_writes
    assert batched_writes <= 14, (batched_writes, single_writes)


async def test_a_batch_of_call_records_is_the_same_rows_in_fewer_statements_sqlite(tmp_path):
    await one_batch_equals_one_by_one(
        f"sqlite:///{tmp_path / 'batched.db'}", f"sqlite:///{tmp_path / 'single.db'}"
    )


@pytest.mark.integration
async def test_a_batch_of_call_records_is_the_same_rows_in_fewer_statements_postgres(
    pg_db, tmp_path
):
    # one batch on PostgreSQL: the rows the SQLite comparison above proves, checked by value
    engine, sessions, agents, line, campaign, statements = world(pg_db)
    journal = Journal(sessions, delay=60)
    for op in operations(agents, line, campaign):
        journal.write(op)
    await journal.drain()
    journal.close()
    assert journal.failures == 0
    with transaction(sessions) as s:
        calls = {c.id: c for c in s.scalars(select(m.Call))}
        legs = list(s.scalars(select(m.CallLeg).order_by(m.CallLeg.id)))
        missed = list(s.scalars(select(m.MissedCall)))
        offers = list(s.scalars(select(m.CallOffer)))
    engine.dispose()
    assert {i: c.state for i, c in calls.items()} == {
        100: m.CallState.ENDED,
        101: m.CallState.ENDED,
        102: m.CallState.ENDED,
        110: m.CallState.MISSED,
    }
    assert calls[100].contact_id is not None and calls[101].contact_id is None
    assert all(c.agent_id is not None and c.answered_at for i, c in calls.items() if i != 110)
    assert [leg.channel_id for leg in legs] == [
        "caller-0",
        "caller-1",
        "caller-2",
        "agent-0",
        "agent-1",
        "agent-2",
        "caller-9",
    ]
    assert all(leg.ended_at is not None for leg in legs)
    assert next(leg for leg in legs if leg.channel_id == "caller-9").cause == "hangup"
    assert [x.call_id for x in missed] == [110]
    assert all(o.result == m.OfferResult.ACCEPTED for o in offers) and len(offers) == 3
    assert writes(statements) <= 14, statements
