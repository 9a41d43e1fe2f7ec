"""Issue #14 item 4: an agent left ready when serve stopped is not offered calls after a
restart until they come back (paused "restart"), and only that node's agents are."""

import asyncio

import pytest
from dbkit import db, migrated_sqlite
from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.acd.node_scope import OwnedByNode
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import NodeLease


class Telephony:
    def __init__(self):
        self.connected = []

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        self.connected.append((call_id, endpoint))
        return f"agent-{call_id}"

    async def hangup(self, channel_id):
        pass

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here

    async def release(self, call_id, channels):
        pass


@pytest.fixture
def world(tmp_path):
    with migrated_sqlite(tmp_path) as sessions:
        with transaction(sessions) as s:
            p.add_line(s, "100", "Support")
            for name in ("ann", "bob"):
                p.add_agent(s, name, endpoint=f"PJSIP/{name}", lines=["100"])
            ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
            line = s.scalar(select(m.Line.id))
        yield sessions, ids, line


async def ready_on(sessions, node, agent_id, line):
    d = Distributor(sessions, EventHub(), Telephony(), node=node)
    d.load()
    await d.login(agent_id)
    await d.choose_lines(agent_id, [line])
    await d.ready(agent_id)
    with db(d) as s:
        assert s.get(m.AgentStatus, agent_id).node == node  # the node the agent works on
    await d.close()


async def test_ready_agent_is_paused_after_its_node_restarts_until_back(world):
    sessions, ids, line = world
    await ready_on(sessions, "a", ids["ann"], line)
    await ready_on(sessions, "b", ids["bob"], line)

    NodeLease(sessions, "a", pid=1, alive=lambda pid: False).take()  # node a restarts
    tel = Telephony()
    d = Distributor(sessions, EventHub(), tel, node="a")
    d.load()
    ann = await d.view(ids["ann"])
    assert (ann.state, ann.pause_reason) == ("paused", "restart")
    # node b's agent: untouched, and not a's (issue #14 item 1): not in a's routing
    with pytest.raises(OwnedByNode, match="logged in on node 'b'"):
        await d.view(ids["bob"])
    assert ids["bob"] not in d.agents
    call = d.call_arrived("ch-1", line, "91000001")
    for _ in range(5):
        await asyncio.sleep(0)
    assert (await d.view(ids["ann"])).offer is None  # paused: not offered
    await d.ready(ids["ann"])  # ann is back at the desk
    for _ in range(5):
        await asyncio.sleep(0)
    assert (await d.view(ids["ann"])).offer.call_id == call
    await d.close()
    with db(d) as s:
        assert s.get(m.AgentStatus, ids["bob"]).state == m.AgentState.READY


async def test_recovery_leaves_another_nodes_agents_alone(world):
    """Node a starting (recover() with none of its calls alive) must not end the call of
    an agent working on node b (it set b's busy agent ready, seen on PostgreSQL)."""
    sessions, ids, _line = world
    with transaction(sessions) as s:
        for name, node in (("ann", "b"), ("bob", "a")):
            status = s.get(m.AgentStatus, ids[name])
            status.state, status.node = m.AgentState.BUSY, node
    d = Distributor(sessions, EventHub(), Telephony(), node="a")
    d.load()
    d.recover(set())
    with db(d) as s:
        got = {name: s.get(m.AgentStatus, ids[name]).state for name in ("ann", "bob")}
    assert got == {"ann": m.AgentState.BUSY, "bob": m.AgentState.READY}  # bob: a's own
    await d.close()
