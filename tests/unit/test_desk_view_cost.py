"""Issue #19: an agent's desk view reads the routing views it needs (its own, and those of
agents a waiting call is reserved for), not every agent's: with 20 desks open, a change on
a line re-rendered 20 views of 20 agents each."""

from __future__ import annotations

from support.fakes import FakeTelephony
from test_distributor import make, start_work, world  # noqa: F401  (fixture)

from asterisk_cube.acd.state import LiveAgent


async def test_a_desk_view_builds_only_its_own_agents_routing_view(world, monkeypatch):  # noqa: F811
    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob", "cid"):
        await start_work(d, ids[name], [lines["100"], lines["200"]])
    d.call_arrived("ch1", lines["100"], "91000001")  # offered to one of them
    d.call_arrived("ch2", lines["100"], "91000002")
    d.call_arrived("ch3", lines["100"], "91000003")
    d.call_arrived("ch4", lines["200"], "91000004")  # waits: all three have an offer
    built = []
    real = LiveAgent.routing_view

    def counted(self):
        built.append(self.agent_id)
        return real(self)

    monkeypatch.setattr(LiveAgent, "routing_view", counted)
    view = await d.view(ids["ann"])
    assert built == [ids["ann"]]
    waiting = {ln.did: ln.waiting for ln in view.lines}
    assert waiting == {"100": 3, "200": 1, "300": 0}, waiting  # as before: offered ones too
