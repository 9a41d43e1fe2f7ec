"""Issue #19: the journal's executemany writes run SQL compiled once per statement and
column set (``db.executemany``) through the driver, not SQLAlchemy's per-execution
compile-cache lookup, parameter construction and bind processing: the same rows
(``test_journal_call_records`` compares a batch with one-by-one writes row for row), the
same transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.sql.compiler import SQLCompiler
from test_journal_batched import transitions
from test_journal_call_records import operations, world

from asterisk_cube.acd import records as rec
from asterisk_cube.db import models as m
from asterisk_cube.db.executemany import executemany
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import transaction


async def batch_builds_no_parameters(url: str, monkeypatch) -> None:
    engine, sessions, agents, line, campaign, _statements = world(url)
    built: list[int] = []
    original = SQLCompiler.construct_params

    def counting(self, *args, **kwargs):
        built.append(1)
        return original(self, *args, **kwargs)

    journal = Journal(sessions, delay=60)
    for op in operations(agents, line, campaign):
        if op.op is not rec.create_contact:  # a single write: the ordinary way
            journal.write(op)
    transitions(journal, agents)
    monkeypatch.setattr(SQLCompiler, "construct_params", counting)
    await journal.drain()  # one batch
    monkeypatch.undo()
    journal.close()
    assert journal.failures == 0
    assert built == []  # was one per executemany statement, each row processed by it
    with transaction(sessions) as s:
        calls = {c.id: c for c in s.scalars(select(m.Call))}
        status = {r.agent_id: r for r in s.scalars(select(m.AgentStatus))}
        logged = list(s.scalars(select(m.AgentStateLog)))
    engine.dispose()
    assert calls[110].state == m.CallState.MISSED and calls[100].state == m.CallState.ENDED
    assert calls[100].answered_at.astimezone(dt.UTC) == dt.datetime(
        2026, 12, 6, 12, 0, 1, tzinfo=dt.UTC
    )
    assert {a: (r.state, r.since.replace(tzinfo=dt.UTC)) for a, r in status.items()} == {
        a: (m.AgentState.READY, dt.datetime(2026, 12, 6, 8, 0, 3, tzinfo=dt.UTC)) for a in agents
    }
    assert len(logged) == 8 and {r.to_state for r in logged} >= {m.AgentState.BUSY}


async def test_a_batch_runs_precompiled_sql_sqlite(tmp_path, monkeypatch):
    await batch_builds_no_parameters(f"sqlite:///{tmp_path / 'cube.db'}", monkeypatch)


@pytest.mark.integration
async def test_a_batch_runs_precompiled_sql_postgres(pg_db, monkeypatch):
    await batch_builds_no_parameters(pg_db, monkeypatch)


def test_a_statement_needing_a_value_the_rows_lack_runs_the_ordinary_way():
    """A Python-side default is computed by SQLAlchemy at execution: such a statement is
    not precompiled, and its rows still get the default."""
    meta = MetaData()
    table = Table(
        "t",
        meta,
        Column("id", Integer, primary_key=True),
        Column("name", String(10)),
        Column("stamp", DateTime, default=lambda: dt.datetime(2026, 1, 1)),
    )
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        executemany(conn, table.insert(), [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        done = executemany(
            conn, table.update().where(table.c.id > 0), [{"name": "c"}, {"name": "d"}]
        )
        assert done.rowcount == 4  # the rows changed, summed over the executions
        rows = conn.execute(select(table).order_by(table.c.id)).all()
    assert [(r.id, r.name, r.stamp) for r in rows] == [
        (1, "d", dt.datetime(2026, 1, 1)),
        (2, "d", dt.datetime(2026, 1, 1)),
    ]
