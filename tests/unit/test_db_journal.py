"""The write-behind journal and the id allocator (db/journal.py, db/ids.py) on SQLite."""

import asyncio
import threading

import pytest
from dbkit import call_row
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.db.ids import IdAllocator
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def add_reason(code, label="x"):
    def op(s):
        s.add(m.PauseReason(code=code, label=label))
        return code

    return op


def relabel(code, label):
    def op(s):
        s.get(m.PauseReason, code).label = label

    return op


def labels(sessions):
    with transaction(sessions) as s:
        return {r.code: r.label for r in s.scalars(select(m.PauseReason))}


async def test_writes_happen_later_in_order_off_the_loop(sessions):
    journal = Journal(sessions)
    threads = []

    def where(s):
        threads.append(threading.current_thread().name)

    journal.write(add_reason("r1", "first"))
    journal.write(relabel("r1", "second"))  # must land after the insert
    journal.write(where)
    await journal.drain()
    assert labels(sessions)["r1"] == "second"
    assert threads and threads[0].startswith("cube-journal")
    journal.close()


async def test_a_burst_is_written_in_few_transactions(sessions):
    journal = Journal(sessions)
    for i in range(200):
        journal.write(add_reason(f"burst{i}"))
    await journal.drain()
    assert len([c for c in labels(sessions) if c.startswith("burst")]) == 200
    assert journal.written == 200 and journal.batches < 200
    journal.close()


async def test_one_bad_operation_loses_only_itself(sessions):
    journal = Journal(sessions)
    journal.write(add_reason("ok1"))
    journal.write(add_reason("ok1"))  # duplicate primary key: fails
    journal.write(add_reason("ok2"))
    await journal.drain()
    assert {"ok1", "ok2"} <= labels(sessions).keys()
    assert journal.failures == 1
    journal.close()


async def test_then_gets_the_result_on_the_loop(sessions):
    journal = Journal(sessions)
    loop_thread = threading.current_thread()
    seen = []
    journal.write(add_reason("t1"), then=lambda r: seen.append((r, threading.current_thread())))
    await journal.drain()
    assert seen == [("t1", loop_thread)]
    journal.close()


async def test_flush_writes_everything_queued_before_a_read(sessions):
    journal = Journal(sessions)
    for i in range(20):
        journal.write(add_reason(f"f{i}"))
    journal.flush()  # on the loop thread, as the distributor does before a transaction
    assert len(labels(sessions)) >= 20
    journal.close()


def test_without_a_loop_it_writes_through(sessions):
    journal = Journal(sessions)
    journal.write(add_reason("sync"))
    assert "sync" in labels(sessions)


async def test_close_writes_what_is_left(sessions):
    journal = Journal(sessions)
    for i in range(50):
        journal.write(add_reason(f"close{i}"))
    await asyncio.get_running_loop().run_in_executor(None, journal.close)
    assert len([c for c in labels(sessions) if c.startswith("close")]) == 50
    assert journal.pending == 0


def test_sqlite_ids_start_after_the_table_and_never_repeat(sessions):
    with transaction(sessions) as s:
        s.add(call_row())  # id 1, by the database
    ids = IdAllocator(sessions.kw["bind"])
    first = ids.next(m.Call)
    second = ids.next(m.Call)  # handed out before `first` is written
    assert (first, second) == (2, 3)
    with transaction(sessions) as s:
        s.add(call_row(second))  # written out of order: still no clash
        s.add(call_row(first))
    assert ids.next(m.Call) == 4
    assert ids.next(m.MissedCall) == 1  # per table
    assert IdAllocator(sessions.kw["bind"]).next(m.Call) == 4  # a restart reads the table
