"""The whole center on one node's panel (issue #14 item 3), on SQLite: the other
nodes' logged-in agents and unfinished calls, and every node live or down, merged into
the panel state beside the local distributor's; a down node's agents marked so."""

import datetime as dt

import pytest
from dbkit import call_row, migrated_sqlite
from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import NodeLease
from asterisk_cube.web.panel_feed import PanelFeed
from asterisk_cube.web.panel_nodes import CenterView, read_center

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def world(tmp_path):
    with migrated_sqlite(tmp_path) as sessions:
        for name in ("a", "b"):
            NodeLease(sessions, name, host=f"h-{name}", pid=1, clock=lambda: T0).take()
        with transaction(sessions) as s:
            p.add_line(s, "100", "Support")
            for name in ("ann", "bob"):
                p.add_agent(s, name, endpoint=f"PJSIP/{name}", lines=["100"])
            ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
            line = s.scalar(select(m.Line.id))
        yield sessions, ids, line


async def test_node_a_panel_shows_node_b_agents_and_calls(world):
    sessions, ids, line = world
    b = Distributor(sessions, EventHub(), None, node="b")
    b.load()
    await b.login(ids["bob"])
    await b.choose_lines(ids["bob"], [line])
    await b.ready(ids["bob"])
    b.journal.flush()
    with transaction(sessions) as s:  # a caller waiting on node b
        row = call_row(started_at=T0)
        row.node, row.line_id, row.queued_at, row.caller_number = "b", line, T0, "91000001"
        s.add(row)
        s.flush()
        call_id = row.id
    a = Distributor(sessions, EventHub(), None, node="a")
    a.load()
    await a.login(ids["ann"])
    center = CenterView(sessions, EventHub(), "a", clock=lambda: T0 + dt.timedelta(seconds=1))
    center.rows = center.read()
    feed = PanelFeed(EventHub(), a, None, center=center)
    state = feed.build()
    assert {n: (v["live"], v["me"], v["host"]) for n, v in state["nodes"].items()} == {
        "a": (True, True, "h-a"),
        "b": (True, False, "h-b"),
    }
    bob, ann = state["agents"][str(ids["bob"])], state["agents"][str(ids["ann"])]
    assert (bob["state"], bob["node"], bob["node_down"], bob["lines"]) == (
        "ready", "b", False, [line],
    )  # fmt: skip
    assert (ann["state"], ann["node"]) == ("paused", "a")
    call = state["calls"][str(call_id)]
    assert (call["phase"], call["node"], call["caller"], call["line_id"]) == (
        "waiting", "b", "91000001", line,
    )  # fmt: skip
    # b's lease ran out (and nobody took over yet): b and its agent and call are down
    center.clock = lambda: T0 + dt.timedelta(seconds=16)
    center.rows = center.read()
    state = feed.build()
    assert state["nodes"]["b"]["live"] is False
    assert state["agents"][str(ids["bob"])]["node_down"] is True
    assert state["calls"][str(call_id)]["node_down"] is True
    await a.close()
    await b.close()


def test_a_single_node_panel_gets_its_node_only(world):
    sessions, _ids, _line = world
    with transaction(sessions) as s:
        s.delete(s.get(m.Node, "b"))
    with transaction(sessions) as s:
        rows = read_center(s, "a", T0)
    assert [n["name"] for n in rows.nodes] == ["a"] and rows.agents == [] == rows.calls


async def test_node_bs_agent_shows_its_phone_on_a_from_the_row_b_writes(world):
    """Issue #14: b writes its logged-in agents' phones (from its AMI) on their status
    rows while another node is live, only what changed; a's panel shows them."""
    from types import SimpleNamespace

    from asterisk_cube.web.panel_nodes import own_devices, write_devices

    sessions, ids, _line = world
    b = Distributor(sessions, EventHub(), None, node="b")
    b.load()
    await b.login(ids["bob"])  # ann stays logged out: hers is not written
    b.journal.flush()
    ami = SimpleNamespace(
        devices={
            "PJSIP/bob": SimpleNamespace(state="inuse", since=T0.timestamp() + 5),
            "PJSIP/ann": SimpleNamespace(state="not_inuse", since=T0.timestamp()),
        }
    )
    on_b = CenterView(sessions, EventHub(), "b")
    on_b.devices = lambda: own_devices(b, ami)
    assert on_b.devices_changed() == {}  # alone (no other node live): nothing to write
    on_b.others_live = True
    changed = on_b.devices_changed()
    assert changed == {ids["bob"]: ("inuse", T0.timestamp() + 5)}
    with transaction(sessions) as s:
        write_devices(s, "b", changed)
    on_b.devices_written.update(changed)
    assert on_b.devices_changed() == {}  # written: nothing new
    on_a = CenterView(sessions, EventHub(), "a", clock=lambda: T0 + dt.timedelta(seconds=1))
    (bob,) = on_a.read().agents
    assert (bob["username"], bob["device"], bob["device_since"]) == (
        "bob",
        "inuse",
        T0.timestamp() + 5,
    )
    a = Distributor(sessions, EventHub(), None, node="a")
    a.load()
    on_a.rows = on_a.read()
    state = PanelFeed(EventHub(), a, None, center=on_a).build()
    item = state["agents"][str(ids["bob"])]
    assert (item["device"], item["device_since"], item["node"]) == (
        "inuse",
        T0.timestamp() + 5,
        "b",
    )
    await a.close()
    await b.close()
