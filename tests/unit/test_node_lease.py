"""The node lease in the database and its renewal loop (issue #14), on SQLite."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from asterisk_cube import node_lease
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import (
    LeaseLost,
    NodeLease,
    NodeNameInUse,
    second_node_on_sqlite,
)

T0 = dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def lease(sessions, clock, name="a", host="h1", pid=100, alive=lambda pid: True):
    return NodeLease(sessions, name, host=host, pid=pid, clock=clock, alive=alive)


def row(sessions, name="a") -> m.Node:
    with transaction(sessions) as s:
        node = s.get(m.Node, name)
        s.expunge(node)
        return node


def test_a_live_node_name_is_refused_until_its_lease_expires(sessions):
    clock = Clock()
    first = lease(sessions, clock)
    first.take()
    assert row(sessions).lease_until == T0 + dt.timedelta(seconds=15)
    clock.advance(14)
    with pytest.raises(NodeNameInUse, match=r"in use by a live serve \(pid 100 on h1"):
        lease(sessions, clock, host="h2", pid=7).take()
    assert row(sessions).pid == 100  # nothing written
    clock.advance(1)  # expired: a dead node
    lease(sessions, clock, host="h2", pid=7).take()
    assert (row(sessions).host, row(sessions).pid) == ("h2", 7)
    with pytest.raises(LeaseLost):
        first.renew()


def test_another_name_is_no_conflict(sessions):
    clock = Clock()
    lease(sessions, clock, "a").take()
    lease(sessions, clock, "b", pid=101).take()
    with transaction(sessions) as s:
        assert s.scalars(select(m.Node.name).order_by(m.Node.name)).all() == ["a", "b"]


def test_a_crashed_process_on_this_host_does_not_hold_its_name(sessions):
    clock = Clock()
    lease(sessions, clock).take()
    clock.advance(1)
    again = lease(sessions, clock, pid=200, alive=lambda pid: pid != 100)
    again.take()
    assert row(sessions).pid == 200


def test_renew_pushes_the_lease_and_release_ends_it(sessions):
    clock = Clock()
    mine = lease(sessions, clock)
    mine.take()
    clock.advance(5)
    mine.renew()
    assert row(sessions).lease_until == T0 + dt.timedelta(seconds=20)
    assert row(sessions).heartbeat_at == T0 + dt.timedelta(seconds=5)
    clock.advance(1)
    mine.release()
    assert row(sessions).lease_until == clock.now
    lease(sessions, clock, host="h2").take()  # free at once after a clean stop


def test_start_pauses_only_this_nodes_working_agents(sessions):
    with transaction(sessions) as s:
        for name in ("ready_a", "busy_a", "paused_a", "ready_b", "legacy", "out_a"):
            p.add_agent(s, name)
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        states = {
            "ready_a": (m.AgentState.READY, "a"),
            "busy_a": (m.AgentState.BUSY, "a"),
            "paused_a": (m.AgentState.PAUSED, "a"),
            "ready_b": (m.AgentState.READY, "b"),
            "legacy": (m.AgentState.READY, None),  # written before nodes had names
            "out_a": (m.AgentState.LOGGED_OUT, "a"),
        }
        for name, (state, node) in states.items():
            status = s.get(m.AgentStatus, ids[name]) or m.AgentStatus(agent_id=ids[name])
            status.state, status.node = state, node
            status.pause_reason = "lunch" if state == m.AgentState.PAUSED else None
            s.add(status)
    assert lease(sessions, Clock()).take() == {"agents_paused": 3}
    with transaction(sessions) as s:
        got = {
            st.agent.username: (st.state, st.pause_reason, st.pause_requested)
            for st in s.scalars(select(m.AgentStatus))
        }
        log = s.scalars(select(m.AgentStateLog.reason)).all()
    P, R = m.AgentState.PAUSED, m.AgentState.READY
    assert got == {
        "ready_a": (P, "restart", None),
        "busy_a": (m.AgentState.BUSY, None, "restart"),  # paused once the call is over
        "paused_a": (P, "lunch", None),
        "ready_b": (R, None, None),  # another node's agent
        "legacy": (P, "restart", None),
        "out_a": (m.AgentState.LOGGED_OUT, None, None),
    }
    assert log == ["restart", "restart"]


async def test_the_loop_renews_off_the_loop_and_releases_on_stop(sessions):
    clock = Clock()
    mine = lease(sessions, clock)
    mine.take()
    renewed = asyncio.Event()
    real_renew = mine.renew

    def renew():
        clock.advance(5)
        until = real_renew()
        renewed.set()
        return until

    mine.renew = renew
    task = asyncio.create_task(node_lease.keep_lease(mine, every=0.01))
    await renewed.wait()
    assert row(sessions).lease_until == T0 + dt.timedelta(seconds=20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert row(sessions).lease_until == clock.now


async def test_the_loop_ends_when_another_process_took_the_name(sessions):
    clock = Clock()
    mine = lease(sessions, clock)
    mine.take()
    clock.advance(20)
    lease(sessions, clock, host="h2").take()
    with pytest.raises(LeaseLost):
        await node_lease.keep_lease(mine, every=0.01)
    assert row(sessions).host == "h2"  # its lease is not released by us


def test_a_second_node_on_sqlite_is_refused_naming_the_first(sessions):
    """An admin starting a second serve under another name on the SQLite database: it ran
    beside the first (both on one Stasis app, call ids colliding); it is refused now."""
    lease(sessions, Clock(), "vm", host="h1", pid=100).take()
    with sessions() as s:
        said = second_node_on_sqlite(s, "b", T0, host="h1", alive=lambda pid: True)
        assert said is not None and "node 'vm', pid 100 on h1" in said and "PostgreSQL" in said
        assert second_node_on_sqlite(s, "vm", T0, host="h1", alive=lambda pid: True) is None
        # the first one gone (its pid no longer runs): nothing to refuse
        assert second_node_on_sqlite(s, "b", T0, host="h1", alive=lambda pid: False) is None
