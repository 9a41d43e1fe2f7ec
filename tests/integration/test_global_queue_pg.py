"""One queue across nodes, the distributor's side on PostgreSQL (issue #14): two
distributors (nodes a and b) on one database, each LISTENing through a real
``ConfigWatcher``, with fake telephony. Callers wait on a's lines; b's agents are offered
them in global order (line priority, then queued_at), each confirmed by a claim; b's
accept makes a ring its agent's phone; a decline or no answer puts the call back in its
place; a hang-up on either side reaches the other; a call is never offered twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import pytest
from sqlalchemy import select, text
from support.fakes import FakeTelephony
from support.polling import until

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.core import agents as ag
from asterisk_cube.db import models as m
from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import NodeLease

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


class StepClock:
    def __init__(self) -> None:
        self.t = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.t

    def tick(self, seconds: float = 1.0) -> None:
        self.t += dt.timedelta(seconds=seconds)


@pytest.fixture
def sessions(pg_db):
    upgrade(pg_db)
    engine = make_engine(pg_db)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        p.add_line(s, "100", "Low", priority=1)
        p.add_line(s, "200", "High", priority=9)
        for name in ("ann", "bob", "cid"):
            p.add_agent(s, name, endpoint=f"PJSIP/{name}@cube-node-b", lines=["100", "200"])
    for node in ("a", "b"):  # both nodes live
        NodeLease(sessions, node, pid=1, alive=lambda pid: False).take()
    yield sessions
    engine.dispose()


async def start_node(sessions, name, clock, tasks):
    d = Distributor(sessions, EventHub(), FakeTelephony(), clock, node=name)  # type: ignore[arg-type]
    d.load()
    watcher = ConfigWatcher(sessions.kw["bind"])
    assert d.xn_attach(watcher)
    tasks += [asyncio.create_task(watcher.run()), asyncio.create_task(d.xn_run(watcher))]
    await until(lambda w=watcher: w.listening.is_set(), what=f"{name} listening")
    d.test_watcher = watcher  # type: ignore[attr-defined]
    return d


@contextlib.asynccontextmanager
async def two_nodes(sessions, names=("a", "b")):
    clock = StepClock()
    nodes, tasks = [], []
    for name in names:
        nodes.append(await start_node(sessions, name, clock, tasks))
    try:
        yield (*nodes, clock)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for d in nodes:
            await d.close()


def ids(sessions):
    with transaction(sessions) as s:
        agents = {a.username: a.id for a in s.scalars(select(m.Agent))}
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    return agents, lines


async def ready(d, agent_id, lines):
    await d.login(agent_id)
    await d.choose_lines(agent_id, list(lines.values()))
    await d.ready(agent_id)


async def offer_of(d, agent_id):
    async def offered():
        view = await d.view(agent_id)
        return view.offer.call_id if view.offer else None

    return await until(offered, what=f"an offer to agent {agent_id} on {d.node}")


def row(sessions, call_id):
    with transaction(sessions) as s:
        call = s.get(m.Call, call_id)
        return call.state, call.agent_id, call.offer_node


async def test_callers_on_a_are_answered_by_bs_agents_in_global_order(sessions):
    agents, lines = ids(sessions)
    ann = agents["ann"]
    async with two_nodes(sessions) as (a, b, clock):
        low1 = a.call_arrived("ch-low1", lines["100"], "91000001")
        clock.tick()
        high = a.call_arrived("ch-high", lines["200"], "91000002")
        clock.tick()
        low2 = a.call_arrived("ch-low2", lines["100"], "91000003")
        await until(lambda: len(b.xn_mirror) == 3, what="b mirrors a's three callers")
        await ready(b, ann, lines)
        order = []
        for _ in range(3):
            call_id = await offer_of(b, ann)
            order.append(call_id)
            assert row(sessions, call_id) == (m.CallState.OFFERED, ann, "b")  # the claim
            await until(lambda c=call_id: a.calls[c].phase == "offered", what="a sees it")
            await b.accept(ann, call_id)
            await until(lambda c=call_id: a.calls[c].phase == "connected", what="a bridges")
            assert a.telephony.connected[-1] == (call_id, "PJSIP/ann@cube-node-b", False)
            await until(lambda c=call_id: b.calls[c].phase == "connected", what="b connected")
            assert b.agents[ann].status.state == ag.AgentState.BUSY
            a.caller_left(a.calls[call_id].channel_id)
            await until(
                lambda: b.agents[ann].status.state != ag.AgentState.BUSY, what="b's wrap-up"
            )
            await a.journal.drain()
            assert row(sessions, call_id)[0] == m.CallState.ENDED
            await b.close_call(ann, call_id)
            if b.agents[ann].status.state == ag.AgentState.WRAP_UP:
                await b.finish_wrap_up(ann)
        assert order == [high, low1, low2]  # priority first, then the longest waiting


async def test_a_declined_or_unanswered_offer_waits_again_in_its_place(sessions):
    agents, lines = ids(sessions)
    ann, bob = agents["ann"], agents["bob"]
    async with two_nodes(sessions) as (a, b, clock):
        first = a.call_arrived("ch-1", lines["100"], "91000001")
        clock.tick()
        second = a.call_arrived("ch-2", lines["100"], "91000002")
        await until(lambda: len(b.xn_mirror) == 2, what="b mirrors")
        await ready(b, ann, lines)
        assert await offer_of(b, ann) == first
        await b.decline(ann, first)  # back in its place; ann is not offered it again
        await until(lambda: a.calls[first].phase == "waiting", what="a gets it back")
        assert await offer_of(b, ann) == second
        await ready(b, bob, lines)
        assert await offer_of(b, bob) == first  # still first in line
        a.telephony.answer = False  # bob's phone does not answer
        await b.accept(bob, first)
        await until(
            lambda: b.agents[bob].status.state == ag.AgentState.PAUSED, what="bob's no-answer"
        )
        assert b.agents[bob].status.pause_reason == ag.PauseReason.NO_ANSWER
        await until(lambda: a.calls[first].phase == "waiting", what="waits again")
        await a.journal.drain()
        assert row(sessions, first) == (m.CallState.WAITING, None, None)
        await until(lambda: first in {w.call_id for w in b.xn_mirror.waiting()}, what="mirror")


async def test_hangups_reach_the_other_node(sessions):
    agents, lines = ids(sessions)
    ann = agents["ann"]
    async with two_nodes(sessions) as (a, b, _clock):
        await ready(b, ann, lines)
        await until(lambda: b._xn_loop is not None, what="b running")
        call_id = a.call_arrived("ch-1", lines["100"], "91000001")  # nobody on a: it waits
        assert await offer_of(b, ann) == call_id
        a.caller_left("ch-1")  # the caller gives up while offered on b: withdrawn there
        await until(lambda: call_id not in b.calls, what="b withdraws the offer")
        assert b.agents[ann].status.state == ag.AgentState.READY
        call_id = a.call_arrived("ch-2", lines["100"], "91000002")
        assert await offer_of(b, ann) == call_id
        await b.accept(ann, call_id)
        await until(lambda: b.calls[call_id].phase == "connected", what="connected")
        await b.hangup(ann, call_id)  # the desk's Hang up on b: a ends every leg
        await until(lambda: "ch-2" in a.telephony.hung_up, what="a hangs the caller up")
        assert f"agent-{call_id}" in a.telephony.hung_up
        await a.journal.drain()
        assert row(sessions, call_id)[0] == m.CallState.ENDED


async def test_agents_on_both_nodes_never_get_one_call_twice(sessions):
    agents, lines = ids(sessions)
    async with two_nodes(sessions) as (a, b, clock):
        calls = []
        for i in range(6):
            calls.append(a.call_arrived(f"ch-a{i}", lines["100"], f"9100000{i}"))
            calls.append(b.call_arrived(f"ch-b{i}", lines["200"], f"9200000{i}"))
            clock.tick()
        await until(lambda: len(a.xn_mirror) == 6 and len(b.xn_mirror) == 6, what="mirrors")
        # ann on a, bob and cid on b become ready at once
        await asyncio.gather(
            ready(a, agents["ann"], lines),
            ready(b, agents["bob"], lines),
            ready(b, agents["cid"], lines),
        )
        offered = {}
        for d, name in ((a, "ann"), (b, "bob"), (b, "cid")):
            offered[name] = await offer_of(d, agents[name])
        assert len(set(offered.values())) == 3, offered
        # the three highest: b's calls (priority 9), the oldest first
        assert sorted(offered.values()) == sorted(calls[1:6:2]), offered
        with transaction(sessions) as s:
            rows = s.scalars(select(m.Call).where(m.Call.state == m.CallState.OFFERED)).all()
            assert {r.id: r.agent_id for r in rows} == {offered[n]: agents[n] for n in offered}


async def test_an_accept_its_node_never_answers_gives_the_claim_back(sessions, monkeypatch):
    """The call's node went away between the claim and the accept (its lease not expired
    yet): the agent's node gives the claim back after the ring timeout, the call waits."""
    from asterisk_cube.acd import crossnode

    monkeypatch.setattr(crossnode, "CONNECT_MARGIN", 0.0)
    agents, lines = ids(sessions)
    ann = agents["ann"]
    async with two_nodes(sessions) as (a, b, _clock):
        b.ring_timeout = 0.5
        call_id = a.call_arrived("ch-1", lines["100"], "91000001")
        await ready(b, ann, lines)
        assert await offer_of(b, ann) == call_id
        a.xn_note = lambda payload: None  # a hears nothing more (as if it had died)
        await b.accept(ann, call_id)
        await until(lambda: call_id not in b.calls, what="b gives up")
        assert b.agents[ann].status.pause_reason == ag.PauseReason.NO_ANSWER
        await b.journal.drain()
        assert row(sessions, call_id) == (m.CallState.WAITING, None, None)


async def test_alone_nothing_is_announced_until_another_node_joins(sessions):
    """While no other node is live a waiting call is neither announced nor claimed (one
    node's PostgreSQL queue costs what it did); a node that joins announces itself and
    the waiting calls are announced to it (so from then on they are claimed)."""
    with transaction(sessions) as s:  # b is not running
        s.get(m.Node, "b").lease_until = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    agents, lines = ids(sessions)
    async with two_nodes(sessions, names=("a",)) as (a, clock):
        await until(lambda: a._xn_loop is not None, what="a running")
        call_id = a.call_arrived("ch-1", lines["100"], "91000001")
        await a.journal.drain()
        assert not a.calls[call_id].announced and a._xn_peers == set()
        NodeLease(sessions, "b", pid=1, alive=lambda pid: False).take()
        tasks: list = []
        b = await start_node(sessions, "b", clock, tasks)
        try:
            await until(lambda: a.calls[call_id].announced, what="a announces it to b")
            await until(lambda: len(b.xn_mirror) == 1, what="b mirrors it")
            await ready(b, agents["ann"], lines)
            assert await offer_of(b, agents["ann"]) == call_id
            assert row(sessions, call_id) == (m.CallState.OFFERED, agents["ann"], "b")
        finally:
            for task in tasks:
                task.cancel()
            await b.close()


async def test_a_restarted_agents_node_gives_its_old_claims_back(sessions):
    """b claimed a's caller for its agent, then restarted (lease still live, so no
    takeover): at start b gives the claim back and a's caller waits again in its place."""
    agents, lines = ids(sessions)
    async with two_nodes(sessions, names=("a",)) as (a, clock):
        tasks: list = []
        b = await start_node(sessions, "b", clock, tasks)
        await ready(b, agents["ann"], lines)
        call_id = a.call_arrived("ch-1", lines["100"], "91000001")
        assert await offer_of(b, agents["ann"]) == call_id
        await until(lambda: a.calls[call_id].phase == "offered", what="a sees the claim")
        for task in tasks:  # b stops (its memory of the offer is gone)
            task.cancel()
        await b.close()
        b = await start_node(sessions, "b", clock, tasks)
        try:
            assert row(sessions, call_id) == (m.CallState.WAITING, None, None)
            await until(lambda: a.calls[call_id].phase == "waiting", what="a queues it again")
        finally:
            for task in tasks:
                task.cancel()
            await b.close()


async def test_after_a_lost_listen_connection_the_mirror_is_read_again(sessions):
    """PostgreSQL drops the LISTEN connections (a restart, a network cut): what was
    notified meanwhile is lost, so on reconnecting each node reads its mirror again."""
    agents, lines = ids(sessions)
    async with two_nodes(sessions) as (a, b, _clock):
        await until(lambda: b._xn_loaded, what="b loaded")
        gone = a.call_arrived("ch-1", lines["100"], "91000001")
        await until(lambda: gone in {w.call_id for w in b.xn_mirror.waiting()}, what="mirror")
        with transaction(sessions) as s:
            s.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                )
            )
        await until(lambda: not b.test_watcher.listening.is_set(), what="b's LISTEN lost")
        a.caller_left("ch-1")  # 'ended' is sent while b does not listen
        await a.journal.drain()
        await until(lambda: b.test_watcher.listening.is_set(), what="b listens again")
        await until(lambda: len(b.xn_mirror) == 0, what="b's mirror read again")
        # and what a announces from now on reaches b
        again = a.call_arrived("ch-2", lines["100"], "91000002")
        await ready(b, agents["ann"], lines)
        assert await offer_of(b, agents["ann"]) == again


async def test_a_mirrored_call_needing_a_skill_goes_only_to_a_skilled_agent(sessions):
    """The mirror carries what routing matches besides the line: a call on a's line of a
    campaign with a skill is not offered to b's ready agent without it, and is to one
    with it (before, the mirror dropped the skill and the first ready agent got it)."""
    with transaction(sessions) as s:
        p.add_campaign(s, "Norsk", direction="inbound", skill="norsk")
        p.add_line(s, "300", "Norsk line", priority=5, campaign="Norsk")
        p.add_agent(s, "dag", endpoint="PJSIP/dag@cube-node-b", lines=["300"], skills=["norsk"])
        p.grant_lines(s, "ann", ["300"])  # ann may serve the line, but lacks the skill
    agents, lines = ids(sessions)
    async with two_nodes(sessions) as (a, b, clock):
        call_id = a.call_arrived("ch-norsk", lines["300"], "91000009")
        await until(lambda: len(b.xn_mirror) == 1, what="b mirrors a's caller")
        assert b.xn_mirror.waiting()[0].skill == "norsk"
        ann = agents["ann"]
        await ready(b, ann, lines)
        clock.tick()
        await ready(b, agents["dag"], {"300": lines["300"]})
        assert await offer_of(b, agents["dag"]) == call_id
        assert (await b.view(ann)).offer is None
        assert row(sessions, call_id) == (m.CallState.OFFERED, agents["dag"], "b")
