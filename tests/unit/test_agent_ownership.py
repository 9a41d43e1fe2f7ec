"""Issue #14 item 1: an agent belongs, while logged in, to the node where its desk
logged in. Another node neither loads it nor lets it log in there (409 naming the
owner) until it logs out or its node's lease expires; reloads keep it out."""

import datetime as dt

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


@pytest.fixture
def world(tmp_path):
    with migrated_sqlite(tmp_path) as sessions:
        with transaction(sessions) as s:
            p.add_line(s, "100", "Support")
            p.add_agent(s, "ann", endpoint="PJSIP/ann", lines=["100"])
            ann = s.scalar(select(m.Agent.id))
        for node in ("a", "b"):  # both nodes live
            NodeLease(sessions, node, pid=1, alive=lambda pid: False).take()
        yield sessions, ann


def node(sessions, name):
    d = Distributor(sessions, EventHub(), None, node=name)
    d.load()
    return d


def owner(d, agent_id):
    with db(d) as s:
        row = s.get(m.AgentStatus, agent_id)
        return row.state, row.node


async def test_a_node_started_after_the_login_leaves_the_agent_to_its_owner(world):
    sessions, ann = world
    a = node(sessions, "a")
    await a.login(ann)
    await a.ready(ann)
    b = node(sessions, "b")  # the failing order: b loads after ann logged in on a
    assert ann not in b.agents and b.dialer_agents() == []
    with pytest.raises(OwnedByNode, match="logged in on node 'a'") as refused:
        await b.login(ann)
    assert refused.value.node == "a" and refused.value.reason == "other_node"
    with pytest.raises(OwnedByNode):
        await b.ready(ann)
    assert owner(a, ann) == (m.AgentState.READY, "a")
    await a.logout(ann)  # logout frees it (once a's journal wrote it)
    assert owner(a, ann) == (m.AgentState.LOGGED_OUT, "a")
    await b.login(ann)
    assert owner(b, ann) == (m.AgentState.PAUSED, "b")
    assert [x.agent_id for x in b.dialer_agents()] == [ann]
    await a.close()
    await b.close()


async def test_a_node_started_before_the_login_cannot_take_the_agent(world):
    sessions, ann = world
    b = node(sessions, "b")  # ann logged out: b keeps her, logged out
    a = node(sessions, "a")
    await a.login(ann)
    assert b.dialer_agents() == []
    with pytest.raises(OwnedByNode, match="node 'a'"):
        await b.login(ann)
    assert owner(a, ann) == (m.AgentState.PAUSED, "a")
    await b.reload_config()  # a reload forgets her on b (logged in elsewhere)
    assert ann not in b.agents
    await a.close()
    await b.close()


async def test_an_agent_of_a_dead_node_can_log_in_elsewhere(world):
    sessions, ann = world
    a = node(sessions, "a")
    await a.login(ann)
    await a.ready(ann)
    with transaction(sessions) as s:  # a's lease expired (kill -9, no renewal)
        s.get(m.Node, "a").lease_until = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    b = node(sessions, "b")
    assert ann in b.agents and b.dialer_agents() == []  # not ready here before login
    await b.login(ann)
    assert owner(b, ann) == (m.AgentState.PAUSED, "b")
    await b.close()


async def test_a_desk_on_another_node_is_refused_naming_the_owner(world):
    """Issue #14 (nodes2 item 3): node b loaded ann while she was logged out, then she
    logged in on a. b's desk (view, event stream, any desk call) is refused naming a,
    not served from b's stale logged-out copy; once she logs out on a it is b's again."""
    sessions, ann = world
    b = node(sessions, "b")  # ann logged out: b keeps a logged-out copy of her
    a = node(sessions, "a")
    await b.check_owner(ann)  # nobody's yet: fine on b
    await a.login(ann)
    await a.check_owner(ann)  # working on a: fine there
    with pytest.raises(OwnedByNode, match="node 'a'") as refused:
        await b.check_owner(ann)
    assert refused.value.node == "a" and refused.value.reason == "other_node"
    await a.logout(ann)
    a.journal.flush()  # once a's write-behind journal wrote the logout
    await b.check_owner(ann)
    await a.close()
    await b.close()
