"""The desk's waiting count on each line counts the callers on every line the agent may
serve, chosen or not, logged in or not: an agent choosing its lines (the start dialog's
"n waiting") sees where callers wait. It showed 0 on every line until the agent had
chosen it, and on all of them while the agent was logged out."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from fakes.web import make_app, make_settings
from sqlalchemy import select
from support.fakes import FakeTelephony

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.core import routing as rt
from asterisk_cube.core.agents import AgentState
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services.demo_data import load_demo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def test_a_permitted_line_not_chosen_shows_its_callers():
    call = rt.WaitingCall(10, rt.CallType.SERVICE, T0, 7)
    skilled = rt.WaitingCall(11, rt.CallType.SERVICE, T0, 7, skill="fr")
    elsewhere = rt.WaitingCall(12, rt.CallType.SERVICE, T0, 8)
    out = rt.AgentView(1, AgentState.LOGGED_OUT, permitted=frozenset({7}))
    choosing = rt.AgentView(2, AgentState.PAUSED, permitted=frozenset({7}))
    serving = rt.AgentView(3, AgentState.READY, frozenset({7}), permitted=frozenset({7}))
    agents = [out, choosing, serving]
    calls = [call, skilled, elsewhere]
    for agent in agents:
        (lw,) = rt.waiting_for_agent(calls, agents, agent.agent_id, T0)
        assert (lw.line_id, lw.count) == (7, 1), agent  # not the skilled one, nor line 8
    assert {a: lw and lw.count for a, lw in rt.waiting_on_line(calls, agents, 7, T0).items()} == {
        1: 1,
        2: 1,
        3: 1,
    }
    assert not rt.eligible(choosing, call)  # routing still keeps to the chosen lines


@pytest.fixture
def demo(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        load_demo(s)
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        line = s.scalars(select(m.Line).order_by(m.Line.id)).first()
        assert line is not None
        line_id, did = line.id, line.did
    d = Distributor(sessions, EventHub(), FakeTelephony())
    d.load()
    assert line_id in d.state.agents[ids["agent01"]].permitted
    return sessions, d, ids, line_id, did


def _waiting(view, line_id):
    return next(ln.waiting for ln in view.lines if ln.line_id == line_id)


async def test_every_desk_that_may_serve_the_line_counts_its_caller(demo, tmp_path):
    sessions, d, ids, line_id, _did = demo
    a1, a2, a3 = ids["agent01"], ids["agent02"], ids["agent03"]
    await d.login(a2)  # logged in, no line chosen yet
    await d.login(a3)
    await d.choose_lines(a3, [line_id])  # paused after login: the caller keeps waiting
    sub = d.hub.subscribe(c.DeskLineCount)
    d.call_arrived("ch1", line_id, "91000001")
    pushed = {}
    while (event := sub.get_nowait()) is not None:
        pushed[event.agent_id] = event.count.waiting
    for agent_id in (a1, a2, a3):  # logged out, choosing, serving
        assert _waiting(await d.view(agent_id), line_id) == 1, agent_id
        assert pushed[agent_id] == 1, agent_id  # the pushed count is the view's (#19)

    app = make_app(make_settings(tmp_path), d, d.hub, sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        login = {"username": "agent01", "password": "demo-password"}
        assert (await client.post("/api/login", json=login)).status_code == 200
        me = (await client.get("/api/me")).json()
    assert me["state"] == "logged_out"
    line = next(ln for ln in me["lines"] if ln["line_id"] == line_id)
    assert (line["waiting"], line["chosen"]) == (1, False)
