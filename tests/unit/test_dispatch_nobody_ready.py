# ruff: noqa: F811 - pytest fixtures are parameters named like the imported fixture
"""Issue #19: with no agent ready (every agent busy, a queue building up), the
distributor's dispatch, which runs on every event of every call, returns before building
the routing views of every agent and waiting call: nobody can be offered a call then."""

from __future__ import annotations

from support.fakes import FakeTelephony
from test_distributor import make, settle, start_work, world  # noqa: F401 (fixture)

from asterisk_cube.acd.state import LiveAgent


async def test_no_routing_views_while_nobody_is_ready_then_the_next_ready_agent_is_offered(
    world, monkeypatch
):
    _, ids, lines = world
    d = make(world, FakeTelephony())
    await start_work(d, ids["ann"], [lines["100"]])
    await d.login(ids["bob"])  # logged in, paused: not ready
    await d.choose_lines(ids["bob"], [lines["100"]])
    first = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], first)
    await settle()
    assert d.calls[first].phase == "connected"

    built: list[int] = []
    original = LiveAgent.routing_view

    def counting(self):
        built.append(self.agent_id)
        return original(self)

    monkeypatch.setattr(LiveAgent, "routing_view", counting)
    second = d.call_arrived("ch2", lines["100"], "91000002")
    third = d.call_arrived("ch3", lines["100"], "91000003")
    d.dispatch()
    assert built == []  # was every agent's view, on each arrival and each dispatch
    assert d.calls[second].phase == d.calls[third].phase == "waiting"

    await d.ready(ids["bob"])  # someone is ready: the first waiting call is offered
    assert d.calls[second].phase == "offered" and d.calls[second].agent_id == ids["bob"]
    assert d.calls[third].phase == "waiting"
