"""Issue #19: a change in one line's queue sends the desks that show the line their new
count (``DeskLineCount``), not a fresh view each; the count is the one the full view
would show, and the push serialises one text per distinct count."""

from __future__ import annotations

import datetime as dt

from support.fakes import FakeTelephony
from test_distributor import make, settle, start_work, world  # noqa: F401  (fixture)

from asterisk_cube.acd import contract as c
from asterisk_cube.core import routing as rt
from asterisk_cube.core.agents import AgentState
from asterisk_cube.web import push

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _drain(sub):
    out = []
    while (event := sub.get_nowait()) is not None:
        out.append(event)
    return out


def _line_entry(view, line_id):
    return next(ln for ln in view.lines if ln.line_id == line_id)


async def test_an_arrival_sends_counts_not_views_and_they_match_the_view(world):  # noqa: F811
    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob"):
        await start_work(d, ids[name], [lines["100"]])
    await d.login(ids["cid"])
    await d.choose_lines(ids["cid"], [lines["200"]])  # paused (login): the call waits
    sub = d.hub.subscribe(c.AgentViewChanged, c.DeskLineCount)
    d.call_arrived("ch1", lines["200"], "91000001")
    events = _drain(sub)
    assert not [e for e in events if isinstance(e, c.AgentViewChanged)], events
    counts = {e.agent_id: e.count for e in events if isinstance(e, c.DeskLineCount)}
    assert set(counts) == {ids["ann"], ids["bob"], ids["cid"]}
    for agent_id, count in counts.items():
        entry = _line_entry(await d.view(agent_id), lines["200"])
        assert count.line_id == lines["200"]
        assert count.waiting == entry.waiting, (agent_id, count, entry)
    assert counts[ids["cid"]].waiting == 1  # it serves the line
    assert counts[ids["ann"]].waiting == 1  # may serve it, not chosen: shown all the same
    assert counts[ids["ann"]] is counts[ids["bob"]]  # one object per distinct count


async def test_a_connected_calls_hangup_wakes_only_its_agents_desk(world):  # noqa: F811
    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob", "cid"):
        await start_work(d, ids[name], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    agent_id = d.calls[call_id].agent_id  # offered to one of them
    sub = d.hub.subscribe(c.AgentViewChanged, c.DeskLineCount)
    await d.accept(agent_id, call_id)
    events = _drain(sub)  # accepted: it left the queue, the others see the count drop
    others = {e.agent_id for e in events if isinstance(e, c.DeskLineCount)}
    assert others == set(ids.values()) - {agent_id}
    assert all(e.count.waiting == 0 for e in events if isinstance(e, c.DeskLineCount))
    await settle()
    _drain(sub)
    d.caller_left("ch1")
    events = _drain(sub)
    assert {e.agent_id for e in events} == {agent_id}, events  # the queue did not change


async def test_a_connected_call_wakes_only_its_agents_desk(world):  # noqa: F811
    """The connect (agent leg answered, bridged) changes only that agent's desk: the
    others' views are the same before and after, so they are not re-rendered (issue #19:
    every logged-in desk was, 20 views per call with 20 desks open)."""
    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob", "cid"):
        await start_work(d, ids[name], [lines["100"]])
    d.call_arrived("ch0", lines["200"], "91000000")  # another line's caller waits
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    agent_id = d.calls[call_id].agent_id
    others = set(ids.values()) - {agent_id}
    sub = d.hub.subscribe(c.AgentViewChanged, c.DeskLineCount)
    await d.accept(agent_id, call_id)  # the connect is spawned, not run yet
    assert d.calls[call_id].phase == "connecting"
    before = {i: (await d.view(i)).to_dict() for i in others}
    _drain(sub)  # the accept's own: the others' counts (the test above)
    await settle()
    assert d.calls[call_id].phase == "connected"
    events = _drain(sub)
    assert {e.agent_id for e in events} == {agent_id}, events
    assert {i: (await d.view(i)).to_dict() for i in others} == before


def _agent(agent_id, lines, skills=(), state=AgentState.READY):
    return rt.AgentView(agent_id, state, frozenset(lines), frozenset(skills), since=T0)


def _call(call_id, line_id, seconds, **kw):
    return rt.WaitingCall(
        call_id, rt.CallType.SERVICE, T0 + dt.timedelta(seconds=seconds), line_id, **kw
    )


def test_waiting_on_line_is_waiting_for_agent_for_each_agent():
    agents = [
        _agent(1, {7}),
        _agent(2, {7}, skills={"fr"}),
        _agent(3, {8}),
        _agent(4, {7}, state=AgentState.LOGGED_OUT),
    ]
    until = T0 + dt.timedelta(minutes=5)
    calls = [
        _call(10, 7, 0),
        _call(11, 7, 1, skill="fr"),
        _call(12, 7, 2, reserved_for=3, reserved_until=until),  # held for agent 3
        _call(13, 7, 3, reserved_for=4, reserved_until=until),  # 4 logged out: open
        _call(14, 8, 4),
    ]
    now = T0 + dt.timedelta(seconds=30)
    got = rt.waiting_on_line(calls, agents, 7, now)
    for agent in agents:
        expected = {
            lw.line_id: lw for lw in rt.waiting_for_agent(calls, agents, agent.agent_id, now)
        }
        assert got[agent.agent_id] == expected.get(7), agent.agent_id
    assert got[1].count == 2 and got[2].count == 3 and got[3].count == 1


def test_one_text_per_distinct_count():
    push.count_message.cache_clear()
    a, b = c.LineCount(7, 2, 12.5), c.LineCount(7, 2, 12.5)
    assert push.count_message(a) is push.count_message(b)
    assert push.count_message.cache_info().misses == 1
    assert push.count_message(a) == (
        'event: count\ndata: {"line_id":7,"waiting":2,"longest_wait_s":12.5}\n\n'
    )


def _asdict_way(view):
    """The view's dict as ``to_dict`` built it before (``dataclasses.asdict`` + convert)."""
    from dataclasses import asdict

    def conv(value):
        if isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [conv(v) for v in value]
        return value

    return conv(asdict(view))


def test_a_pushed_view_is_the_same_dict_as_before_without_asdict():
    contact = c.ContactView(7, "+4791000000", "Kari", None, None, "Hot", "new", {"a": [1, 2]})
    card = c.CallView(
        call_id=5,
        state="connected",
        line="Support",
        did="100",
        caller="91000000",
        kind="service",
        campaign="Hot",
        client_id=None,
        contacts=[contact],
        contact_id=7,
        categories=[c.CategoryView(1, "Mood", False, None, [c.TopicView(2, "Happy")])],
        registration_required=True,
        registered=False,
        answered_at=T0,
        forward=c.ForwardView("ringing", "+4722000000", 1, 2),
    )
    view = c.AgentView(
        agent_id=1,
        username="kari",
        name="Kari",
        role="agent",
        state="busy",
        since=T0,
        pause_reason=None,
        wrap_up_until=None,
        blocked=False,
        lines=[c.LineView(3, "100", "Support", 1, True, 2, 12.5)],
        offer=c.OfferView(6, "Support", "100", "9100", "service", T0, T0, "hi"),
        call=card,
        missed=[c.MissedCallView(9, "Support", "9100", T0)],
        pause_reasons=[("lunch", "Lunch")],
    )
    assert view.to_dict() == _asdict_way(view)
    assert view.to_dict()["pause_reasons"] == [["lunch", "Lunch"]]


async def test_the_dialer_wakes_once_per_change_not_once_per_desk(world):  # noqa: F811
    from asterisk_cube.dialer.loop import WAKE_ON

    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob", "cid"):
        await d.login(ids[name])
        await d.choose_lines(ids[name], [lines["100"]])  # paused: the calls wait
    dialer = d.hub.subscribe(*WAKE_ON)
    desks = d.hub.subscribe(c.AgentViewChanged, c.DeskLineCount)
    d.call_arrived("ch1", lines["100"], "91000001")
    assert len(_drain(desks)) == 3  # each desk is told
    assert len(_drain(dialer)) == 1  # the dialer once
    await d.ready(ids["ann"])  # an agent change wakes it too (and the call is offered)
    assert len(_drain(dialer)) >= 1


async def test_no_counts_are_computed_for_desks_that_are_not_open(world, monkeypatch):  # noqa: F811
    _, ids, lines = world
    d = make(world, FakeTelephony())
    for name in ("ann", "bob", "cid"):
        await d.login(ids[name])
        await d.choose_lines(ids[name], [lines["100"]])
    computed = []
    real = rt.waiting_on_line

    def counted(calls, agents, line_id, now):
        computed.append(sorted(a.agent_id for a in agents))
        return real(calls, agents, line_id, now)

    monkeypatch.setattr(rt, "waiting_on_line", counted)
    d.call_arrived("ch1", lines["100"], "91000001")  # no desk open: nothing to count
    assert computed == []
    sub = d.hub.subscribe(c.DeskLineCount, agent_id=ids["bob"])  # bob's desk opens
    d.call_arrived("ch2", lines["100"], "91000002")
    assert computed == [[ids["bob"]]]
    assert [e.count.waiting for e in _drain(sub)] == [2]
