"""One queue across nodes on PostgreSQL (issue #14): of nodes claiming the same waiting
call at once exactly one wins (the conditional UPDATE), and a queue event NOTIFYed in a
transaction reaches a LISTENing node on commit and feeds its mirror. The building
blocks; serve uses them through acd/crossnode.py (test_global_queue_pg/_live)."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from asterisk_cube.acd.crossnode_claims import announce, claim
from asterisk_cube.core.queue_mirror import CHANNEL, QueueEvent, WaitingMirror, decode
from asterisk_cube.core.routing import CallType
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(pg_db):
    upgrade(pg_db)
    engine = make_engine(pg_db)
    yield make_sessionmaker(engine)
    engine.dispose()


def waiting_calls(sessions, n: int) -> list[int]:
    with transaction(sessions) as s:
        calls = [
            m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.SERVICE,
                state=m.CallState.WAITING,
                node="b",
                queued_at=T0,
            )
            for _ in range(n)
        ]
        s.add_all(calls)
        s.flush()
        return [c.id for c in calls]


def test_of_nodes_claiming_one_call_at_once_exactly_one_wins(sessions):
    calls = waiting_calls(sessions, 20)
    nodes = ["a", "c", "d", "e"]
    won: dict[int, list[str]] = {c: [] for c in calls}
    errors: list[BaseException] = []
    for call_id in calls:
        start = threading.Barrier(len(nodes))

        def node(name: str, call_id: int = call_id, start: threading.Barrier = start) -> None:
            try:
                start.wait()
                with transaction(sessions) as s:
                    if claim(s, call_id, None, name):  # type: ignore[arg-type]
                        won[call_id].append(name)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=node, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert all(len(names) == 1 for names in won.values()), won
    with transaction(sessions) as s:
        for call_id, (winner,) in won.items():
            row = s.get(m.Call, call_id)
            assert (row.state, row.offer_node) == (m.CallState.OFFERED, winner)


def test_a_queue_event_reaches_a_listening_node_on_commit(sessions, pg_db):
    (call_id,) = waiting_calls(sessions, 1)
    event = QueueEvent("waiting", call_id, "b", 3, CallType.SERVICE, T0)
    url = make_engine(pg_db).url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with transaction(sessions) as s:
            assert announce(s, event)
            assert not list(listener.notifies(timeout=0.2, stop_after=1))  # not before commit
        (note,) = list(listener.notifies(timeout=5, stop_after=1))
    mirror = WaitingMirror("a")
    assert mirror.apply(decode(note.payload))  # type: ignore[arg-type]
    assert [c.call_id for c in mirror.waiting()] == [call_id]
