from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.agents import AgentState
from asterisk_cube.core.routing import (
    AgentView,
    Assignment,
    AssignReason,
    CallType,
    LineWaiting,
    WaitingCall,
    assignments,
    call_order_key,
    eligible,
    next_assignment,
    next_call_for_agent,
    offer_lapsed,
    offer_withdrawn,
    offered,
    ordered,
    reservation_holds,
    serves,
    waiting_by_line,
    waiting_for_agent,
)

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


NOW = at(1000)
CB, NEW, SVC, ANS = (
    CallType.CUSTOMER_CALLBACK,
    CallType.NEW_CUSTOMER,
    CallType.SERVICE,
    CallType.ANSWERING,
)


def call(call_id, call_type=SVC, line=1, wait=0, **kw):
    return WaitingCall(call_id, call_type, at(wait), line_id=line, **kw)


def agent(agent_id, lines=(1, 2, 3), skills=(), idle=0, state=AgentState.READY, **kw):
    return AgentView(
        agent_id,
        state,
        frozenset(lines),
        frozenset(skills),
        since=at(idle),
        idle_since=at(idle),
        **kw,
    )


# ------------------------------------------------------------------ call order


def test_call_type_beats_priority_and_wait():
    calls = [
        call("svc", SVC, line=1, wait=0),
        call("new", NEW, line=2, wait=50),
        call("cb", CB, line=3, wait=90),
        call("ans", ANS, line=1, wait=10),
    ]
    prio = {1: 100, 2: 5, 3: 0}
    assert [c.call_id for c in ordered(calls, prio)] == ["cb", "new", "svc", "ans"]
    assert next_assignment(calls, [agent(1)], NOW, prio).call_id == "cb"


def test_higher_line_priority_first_then_longest_wait():
    calls = [call("a", line=1, wait=0), call("b", line=2, wait=30), call("c", line=2, wait=10)]
    assert [c.call_id for c in ordered(calls, {1: 1, 2: 5})] == ["c", "b", "a"]
    # a supervisor swaps the priorities: the same waiting calls reorder at once
    assert [c.call_id for c in ordered(calls, {1: 9, 2: 5})] == ["a", "c", "b"]
    # no priorities known: all equal, longest wait first
    assert [c.call_id for c in ordered(calls)] == ["a", "c", "b"]


def test_service_and_answering_calls_rank_equally():
    calls = [call("ans", ANS, wait=0), call("svc", SVC, wait=5)]
    assert [c.call_id for c in ordered(calls)] == ["ans", "svc"]


def test_order_key_is_stable_for_equal_calls():
    a, b = call(2, wait=0), call(1, wait=0)
    assert call_order_key(b) < call_order_key(a)


# ---------------------------------------------------------------- agent choice


def test_longest_idle_agent_gets_the_call():
    agents = [agent(1, idle=300), agent(2, idle=100), agent(3, idle=200)]
    assert next_assignment([call("x")], agents, NOW) == Assignment(
        "x", 2, AssignReason.LONGEST_IDLE
    )


def test_idle_tie_goes_to_lowest_id():
    agents = [agent(5, idle=100), agent(3, idle=100)]
    assert next_assignment([call("x")], agents, NOW).agent_id == 3


def test_agent_without_idle_time_counts_as_just_ready():
    fresh = AgentView(9, AgentState.READY, frozenset({1}))
    assert next_assignment([call("x")], [fresh, agent(4, idle=999)], NOW).agent_id == 4


def test_only_ready_agents_get_calls():
    agents = [agent(i, state=s) for i, s in enumerate(AgentState) if s is not AgentState.READY]
    assert next_assignment([call("x")], agents, NOW) is None
    assert assignments([call("x")], agents, NOW) == ()


def test_line_choice_is_required_for_hotline_and_service_calls():
    agents = [agent(1, lines=(2,), idle=0), agent(2, lines=(1,), idle=500)]
    assert next_assignment([call("x", SVC, line=1)], agents, NOW).agent_id == 2
    assert next_assignment([call("y", NEW, line=3)], agents, NOW) is None
    assert next_assignment([call("z", SVC, line=None)], agents, NOW) is None


def test_skill_applies_to_hotline_calls():
    agents = [agent(1, skills=(), idle=0), agent(2, skills=("sales",), idle=500)]
    assert next_assignment([call("x", NEW, skill="sales")], agents, NOW).agent_id == 2


def test_customer_callback_goes_to_campaign_agents_without_line_choice():
    agents = [agent(1, lines=(), skills=("camp",), idle=500), agent(2, lines=(7,), idle=0)]
    cb = call("cb", CB, line=7, skill="camp")
    assert next_assignment([cb], agents, NOW).agent_id == 1
    # a campaign without a skill: the callback's line decides
    assert next_assignment([call("cb2", CB, line=7)], agents, NOW).agent_id == 2


def test_a_call_to_the_caller_id_of_a_campaign_without_a_skill_goes_to_anyone():
    """A call to an outbound campaign's caller ID has no line; with no skill to pick the
    campaign's agents, every ready agent may take it (it must not wait forever)."""
    agents = [agent(1, lines=(), idle=0)]  # chose no line, holds no skill
    cb = call("cb", CB, line=None)
    assert next_assignment([cb], agents, NOW).agent_id == 1
    assert [a.agent_id for a in assignments([cb], agents, NOW)] == [1]
    # ... but a service call without a line still goes to nobody
    assert assignments([call("s", SVC, line=None), cb], agents, NOW)[0].call_id == "cb"


def test_callback_prefers_the_last_agent_if_eligible():
    agents = [agent(1, skills=("c",), idle=0), agent(2, skills=("c",), idle=500)]
    cb = call("cb", CB, skill="c", last_agent_id=2)
    assert next_assignment([cb], agents, NOW) == Assignment("cb", 2, AssignReason.LAST_AGENT)


def test_callback_falls_back_when_last_agent_is_not_free():
    for last in (
        agent(2, skills=("c",), state=AgentState.BUSY),
        agent(2, skills=("c",), dialer_dialing=True),
        agent(2, skills=(), idle=0),  # lost the campaign skill
        agent(2, skills=("c",), state=AgentState.LOGGED_OUT),
    ):
        agents = [agent(1, skills=("c",), idle=400), last]
        cb = call("cb", CB, skill="c", last_agent_id=2)
        assert next_assignment([cb], agents, NOW) == Assignment("cb", 1, AssignReason.LONGEST_IDLE)


# --------------------------------------------------------------------- blocking


def test_blocked_agents_get_no_inbound_but_see_it_waiting():
    agents = [
        agent(1, dialer_dialing=True, idle=0),
        agent(2, on_outbound_call=True, idle=0),
        agent(3, idle=900),
    ]
    calls = [call("x", line=1, wait=5)]
    assert next_assignment(calls, agents, NOW).agent_id == 3
    assert next_assignment(calls, agents[:2], NOW) is None
    assert waiting_for_agent(calls, agents, 1, NOW) == (LineWaiting(1, 1, at(5)),)
    assert agents[0].blocked and agents[1].blocked and not agents[2].blocked


def test_blocked_agent_takes_the_call_as_soon_as_unblocked():
    calls = [call("x")]
    blocked = agent(1, on_outbound_call=True)
    assert next_assignment(calls, [blocked], NOW) is None
    free = AgentView(1, AgentState.READY, blocked.lines, since=NOW, idle_since=NOW)
    assert next_assignment(calls, [free], NOW).agent_id == 1


# ----------------------------------------------------------------------- offers


def test_pending_offer_is_not_routed_again():
    c = offered(call("x"), 1)
    assert c.offered_to == 1
    assert next_assignment([c], [agent(2)], NOW) is None
    assert next_assignment([offer_withdrawn(c)], [agent(2)], NOW).agent_id == 2


def test_offer_timeout_moves_on_to_the_next_agent():
    agents = [agent(1, idle=0), agent(2, idle=100), agent(3, idle=200)]
    c = call("x")
    first = next_assignment([c], agents, NOW)
    assert first.agent_id == 1
    c = offer_lapsed(offered(c, 1), 1, at(1020))
    assert c.offered_to is None
    # agent 1 is still shown as ready (e.g. it declined): it is skipped for this call
    assert next_assignment([c], agents, at(1020)).agent_id == 2
    c = offer_lapsed(c, 2, at(1040))
    assert next_assignment([c], agents, at(1040)).agent_id == 3
    # other calls still go to agent 1
    assert next_assignment([c, call("y", wait=5)], agents, at(1040)).call_id == "x"
    assert {a.call_id: a.agent_id for a in assignments([c, call("y", wait=5)], agents, NOW)} == {
        "x": 3,
        "y": 1,
    }


def test_agent_who_came_back_may_be_offered_the_call_again():
    c = offer_lapsed(call("x"), 1, at(500))
    paused_then_ready = AgentView(
        1, AgentState.READY, frozenset({1}), since=at(800), idle_since=at(800)
    )
    assert next_assignment([c], [paused_then_ready], NOW).agent_id == 1
    still_there = AgentView(1, AgentState.READY, frozenset({1}), since=at(400))
    assert next_assignment([c], [still_there], NOW) is None


# ------------------------------------------------------------------ reservations


def test_reserved_callback_only_for_its_agent_until_expiry():
    agents = [agent(1, idle=0), agent(2, idle=500, state=AgentState.BUSY)]
    c = call("cb", CB, reserved_for=2, reserved_until=at(1200))
    assert reservation_holds(c, agents, NOW)
    assert next_assignment([c], agents, NOW) is None  # waits for agent 2
    assert next_assignment([c], agents, at(1200)).agent_id == 1  # reservation over
    agents[1] = agent(2, idle=500)
    assert next_assignment([c], agents, NOW) == Assignment("cb", 2, AssignReason.RESERVED)


def test_reservation_for_a_logged_out_agent_goes_to_anyone():
    agents = [agent(1, idle=0), agent(2, state=AgentState.LOGGED_OUT)]
    c = call("cb", CB, reserved_for=2, reserved_until=at(5000))
    assert not reservation_holds(c, agents, NOW)
    assert next_assignment([c], agents, NOW).agent_id == 1
    # an agent not known at all counts as logged out too
    assert next_assignment([c], agents[:1], NOW).agent_id == 1


def test_reserved_agent_needs_no_line_choice():
    agents = [agent(2, lines=(), idle=0)]
    c = call("cb", CB, line=1, reserved_for=2, reserved_until=at(5000))
    assert next_assignment([c], agents, NOW).agent_id == 2


def test_open_ended_reservation_holds_while_agent_logged_in():
    c = call("cb", CB, reserved_for=2)
    assert next_assignment([c], [agent(1), agent(2, state=AgentState.PAUSED)], NOW) is None


# ------------------------------------------------------------------ many at once


def test_assignments_are_greedy_in_call_order_with_each_agent_once():
    agents = [agent(1, idle=0), agent(2, idle=10), agent(3, idle=20, lines=(2,))]
    calls = [call("a", line=1, wait=0), call("b", line=1, wait=1), call("c", line=2, wait=2)]
    result = assignments(calls, agents, NOW, {1: 1, 2: 1})
    assert [(a.call_id, a.agent_id) for a in result] == [("a", 1), ("b", 2), ("c", 3)]
    # a higher-priority line takes the longest-idle agent first
    result = assignments(calls, agents, NOW, {2: 9})
    assert [(a.call_id, a.agent_id) for a in result] == [("c", 1), ("a", 2)]


def test_unservable_top_call_does_not_block_others():
    calls = [call("cb", CB, skill="nobody", wait=0), call("svc", wait=100)]
    assert next_assignment(calls, [agent(1)], NOW).call_id == "svc"


def test_next_call_for_agent_matches_assignments():
    agents = [agent(1, idle=0), agent(2, idle=10)]
    calls = [call("a", wait=0), call("b", wait=1)]
    assert next_call_for_agent(calls, agents, 2, NOW).call_id == "b"
    assert next_call_for_agent(calls, agents, 3, NOW) is None


# --------------------------------------------------------------------- counters


def test_waiting_for_agent_counts_per_chosen_line():
    me = agent(1, lines=(1, 2), skills=("c",), state=AgentState.BUSY)
    other = agent(2, lines=(1, 2, 3))
    calls = [
        call("a", line=1, wait=30),
        call("b", line=1, wait=10),
        call("c", line=2, wait=20),
        call("d", line=3, wait=0),  # not my line
        call("e", CB, line=None, skill="c", wait=5),
        call("f", CB, line=None, skill="x", wait=5),  # another campaign
        call("g", CB, line=1, reserved_for=2, reserved_until=at(5000)),  # another's reservation
        call("h", CB, line=3, reserved_for=1, reserved_until=at(5000), wait=7),
    ]
    result = waiting_for_agent(calls, [me, other], 1, NOW)
    assert result == (
        LineWaiting(1, 2, at(10)),
        LineWaiting(2, 1, at(20)),
        LineWaiting(3, 1, at(7)),
        LineWaiting(None, 1, at(5)),
    )
    assert result[0].call_ids == ("b", "a")
    assert waiting_for_agent(calls, [me], 99, NOW) == ()


def test_waiting_by_line_for_the_panel():
    calls = [call("a", line=2, wait=5), call("b", line=1, wait=9), call("c", line=2, wait=1)]
    assert waiting_by_line(calls) == (LineWaiting(1, 1, at(9)), LineWaiting(2, 2, at(1)))
    assert waiting_by_line([]) == ()


# ------------------------------------------------------------------- properties

agent_states = st.sampled_from(list(AgentState))


@st.composite
def scenario(draw):
    n_agents = draw(st.integers(0, 6))
    agents = []
    for i in range(n_agents):
        agents.append(
            AgentView(
                i + 1,
                draw(st.sampled_from([AgentState.READY] * 3 + list(AgentState))),
                frozenset(draw(st.sets(st.integers(1, 3), max_size=3))),
                frozenset(draw(st.sets(st.sampled_from(["a", "b"]), max_size=2))),
                since=at(draw(st.integers(0, 900))),
                idle_since=at(draw(st.integers(0, 900))),
                on_outbound_call=draw(st.booleans()) and draw(st.booleans()),
                dialer_dialing=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    calls = []
    for j in range(draw(st.integers(0, 8))):
        declined = tuple(
            (draw(st.integers(1, 6)), at(draw(st.integers(0, 1000))))
            for _ in range(draw(st.integers(0, 2)))
        )
        reserved = draw(st.one_of(st.none(), st.integers(1, 6)))
        calls.append(
            WaitingCall(
                j,
                draw(st.sampled_from(list(CallType))),
                at(draw(st.integers(0, 999))),
                line_id=draw(st.one_of(st.none(), st.integers(1, 3))),
                skill=draw(st.one_of(st.none(), st.sampled_from(["a", "b"]))),
                last_agent_id=draw(st.one_of(st.none(), st.integers(1, 6))),
                reserved_for=reserved,
                reserved_until=at(draw(st.integers(500, 1500))) if reserved else None,
                declined=declined,
                offered_to=draw(st.one_of(st.none(), st.integers(1, 6)))
                if draw(st.booleans()) and draw(st.booleans())
                else None,
            )
        )
    prio = draw(st.dictionaries(st.integers(1, 3), st.integers(-5, 5)))
    return calls, agents, prio


@settings(max_examples=250, deadline=None)
@given(scenario())
def test_assignment_properties(data):
    calls, agents, prio = data
    result = assignments(calls, agents, NOW, prio)
    by_id = {c.call_id: c for c in calls}
    agent_by_id = {a.agent_id: a for a in agents}
    # no agent or call twice
    assert len({a.agent_id for a in result}) == len(result)
    assert len({a.call_id for a in result}) == len(result)
    order = [c.call_id for c in ordered(calls, prio)]
    position = {cid: i for i, cid in enumerate(order)}
    assigned_to = {a.call_id: a.agent_id for a in result}
    taken_before = {}
    taken = set()
    for cid in order:
        taken_before[cid] = frozenset(taken)
        if cid in assigned_to:
            taken.add(assigned_to[cid])

    for a in result:
        c, ag = by_id[a.call_id], agent_by_id[a.agent_id]
        assert c.offered_to is None
        assert ag.state is AgentState.READY and not ag.blocked
        if a.reason is AssignReason.RESERVED:
            assert ag.agent_id == c.reserved_for and reservation_holds(c, agents, NOW)
        else:
            assert not reservation_holds(c, agents, NOW)
            assert eligible(ag, c) and serves(ag, c)
        if a.reason is AssignReason.LONGEST_IDLE:
            others = [
                o for o in agents if o.agent_id not in taken_before[c.call_id] and eligible(o, c)
            ]
            assert all((ag.idle_since, ag.agent_id) <= (o.idle_since, o.agent_id) for o in others)
            assert c.last_agent_id not in {o.agent_id for o in others}

    # greedy completeness: an unassigned routable call found all its agents taken before it
    for c in calls:
        if c.call_id in assigned_to or c.offered_to is not None:
            continue
        if reservation_holds(c, agents, NOW):
            continue
        for o in agents:
            if eligible(o, c):
                assert o.agent_id in taken_before[c.call_id]
    # next_assignment is the first of assignments
    first = next_assignment(calls, agents, NOW, prio)
    assert first == (result[0] if result else None)
    if result:
        assert position[result[0].call_id] == min(position[a.call_id] for a in result)
