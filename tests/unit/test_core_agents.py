from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.agents import (
    Accept,
    AgentState,
    AgentStatus,
    CallEnded,
    CallStarted,
    CancelPauseRequest,
    Decline,
    ExtendWrapUp,
    FinishWrapUp,
    IllegalTransition,
    Login,
    Logout,
    MakeReady,
    Offer,
    OfferTimeout,
    OfferWithdrawn,
    Pause,
    PauseReason,
    RejectReason,
    StateLogRecord,
    StateTime,
    WrapUpExpired,
    can,
    time_in_states,
    transition,
)

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def run(status, *steps):
    """Apply (event, seconds after T0) steps; return final status and the log records."""
    records = []
    for event, at in steps:
        result = transition(status, event, T0 + at * S)
        records.append(result.record)
        status = result.status
    return status, records


def logged_in(**kw):
    return transition(AgentStatus(7), Login(**kw), T0).status


def rejected(status, event, reason, at=0):
    with pytest.raises(IllegalTransition) as info:
        transition(status, event, T0 + at * S)
    assert info.value.reason is reason
    assert not can(status, event, T0 + at * S)
    return info.value


# ------------------------------------------------------------------ happy paths


def test_login_to_ready_and_log_record():
    result = transition(AgentStatus(7), Login(), T0)
    assert result.status.state is AgentState.READY
    assert result.status.since == T0 and result.status.idle_since == T0
    assert result.record == StateLogRecord(7, T0, AgentState.LOGGED_OUT, AgentState.READY, "login")


def test_login_paused():
    status = logged_in(paused=PauseReason.ADMIN)
    assert status.state is AgentState.PAUSED and status.pause_reason == "admin"


def test_inbound_call_cycle_with_wrap_up():
    status, records = run(
        logged_in(),
        (Offer(call_id=11), 10),
        (Accept(), 15),
        (CallEnded(wrap_up=timedelta(seconds=30)), 100),
        (WrapUpExpired(), 130),
    )
    assert status.state is AgentState.READY
    assert status.idle_since == T0 + 130 * S
    assert [(r.from_state, r.to_state, r.reason) for r in records] == [
        (AgentState.READY, AgentState.OFFERED, "offer"),
        (AgentState.OFFERED, AgentState.BUSY, "accept"),
        (AgentState.BUSY, AgentState.WRAP_UP, "call_ended"),
        (AgentState.WRAP_UP, AgentState.READY, "wrap_up_expired"),
    ]


def test_offered_and_busy_carry_the_call():
    status, _ = run(logged_in(), (Offer(call_id="c1"), 1))
    assert status.call_id == "c1"
    status, _ = run(status, (Accept(), 2))
    assert status.state is AgentState.BUSY and status.call_id == "c1"


def test_offer_timeout_pauses_with_no_answer():
    status, records = run(logged_in(), (Offer(call_id=1), 1), (OfferTimeout(), 21))
    assert status.state is AgentState.PAUSED
    assert status.pause_reason == PauseReason.NO_ANSWER
    assert records[-1].reason == "no_answer"


def test_decline_or_withdrawn_offer_keeps_idle_since():
    start = logged_in()
    for ending in (Decline(), OfferWithdrawn()):
        status, _ = run(start, (Offer(call_id=1), 50), (ending, 55))
        assert status.state is AgentState.READY
        assert status.since == T0 + 55 * S
        assert status.idle_since == T0  # did not lose its place in the idle order
        assert status.call_id is None


def test_zero_wrap_up_goes_straight_to_ready():
    status, _ = run(logged_in(), (CallStarted(call_id=3), 1), (CallEnded(), 60))
    assert status.state is AgentState.READY


def test_extend_wrap_up_and_stale_timer_rejected():
    status, _ = run(
        logged_in(),
        (CallStarted(), 0),
        (CallEnded(wrap_up=timedelta(seconds=15)), 10),
        (ExtendWrapUp(by=timedelta(seconds=60)), 20),
    )
    assert status.wrap_up_until == T0 + 85 * S
    assert status.wrap_up_left(T0 + 80 * S) == timedelta(seconds=5)
    rejected(status, WrapUpExpired(), RejectReason.WRAP_UP_NOT_OVER, at=25)
    status, _ = run(status, (WrapUpExpired(), 85))
    assert status.state is AgentState.READY


def test_extend_after_the_deadline_counts_from_now():
    status, _ = run(logged_in(), (CallStarted(), 0), (CallEnded(wrap_up=timedelta(seconds=10)), 10))
    status, _ = run(status, (ExtendWrapUp(by=timedelta(seconds=30)), 40))
    assert status.wrap_up_until == T0 + 70 * S


def test_pause_requested_in_wrap_up_is_applied_at_expiry():
    status, records = run(
        logged_in(),
        (CallStarted(), 0),
        (CallEnded(wrap_up=timedelta(seconds=30)), 60),
        (Pause(PauseReason.LUNCH), 70),
    )
    assert status.state is AgentState.WRAP_UP and status.pause_requested == "lunch"
    assert records[-1].to_state is AgentState.WRAP_UP
    status, records = run(status, (WrapUpExpired(), 90))
    assert status.state is AgentState.PAUSED and status.pause_reason == "lunch"
    assert status.pause_requested is None
    assert records[-1].reason == "lunch"


def test_pause_requested_while_busy_survives_wrap_up():
    status, _ = run(
        logged_in(),
        (CallStarted(), 0),
        (Pause(PauseReason.BREAK), 5),
        (CallEnded(wrap_up=timedelta(seconds=10)), 60),
    )
    assert status.state is AgentState.WRAP_UP and status.pause_requested == "break"
    status, _ = run(status, (WrapUpExpired(), 70))
    assert status.pause_reason == "break"


def test_pause_requested_with_zero_wrap_up():
    status, _ = run(logged_in(), (CallStarted(), 0), (Pause("training"), 5), (CallEnded(), 9))
    assert status.state is AgentState.PAUSED and status.pause_reason == "training"


def test_make_ready_in_wrap_up_cancels_pause_request():
    status, _ = run(
        logged_in(),
        (CallStarted(), 0),
        (CallEnded(wrap_up=timedelta(seconds=30)), 10),
        (Pause("lunch"), 11),
        (MakeReady(), 12),
    )
    assert status.state is AgentState.READY and status.pause_requested is None


def test_finish_wrap_up_only_from_wrap_up():
    # Finishing wrap-up ends the wrap-up early; anywhere else it is refused, so a paused
    # agent is never made ready by it (issue #11 item 4).
    wrap, _ = run(logged_in(), (CallStarted(), 0), (CallEnded(wrap_up=timedelta(seconds=30)), 5))
    status, records = run(wrap, (FinishWrapUp(), 6))
    assert status.state is AgentState.READY and status.wrap_up_until is None
    assert records[-1].reason == "finish_wrap_up"
    paused, _ = run(logged_in(), (Pause("lunch"), 1))
    rejected(paused, FinishWrapUp(), RejectReason.NOT_IN_WRAP_UP)
    rejected(logged_in(), FinishWrapUp(), RejectReason.NOT_IN_WRAP_UP)
    busy, _ = run(logged_in(), (CallStarted(), 1))
    rejected(busy, FinishWrapUp(), RejectReason.NOT_IN_WRAP_UP)
    rejected(AgentStatus(7), FinishWrapUp(), RejectReason.NOT_IN_WRAP_UP)


def test_finish_wrap_up_goes_to_the_pause_requested_meanwhile():
    status, _ = run(
        logged_in(),
        (CallStarted(), 0),
        (CallEnded(wrap_up=timedelta(seconds=30)), 10),
        (Pause("lunch"), 11),
        (FinishWrapUp(), 12),
    )
    assert status.state is AgentState.PAUSED and status.pause_reason == "lunch"


def test_cancel_pause_request():
    status, _ = run(logged_in(), (CallStarted(), 0), (Pause("lunch"), 1), (CancelPauseRequest(), 2))
    assert status.pause_requested is None and status.state is AgentState.BUSY
    rejected(status, CancelPauseRequest(), RejectReason.NO_PAUSE_REQUESTED)


def test_pause_reason_change_and_back_to_ready():
    status, records = run(logged_in(), (Pause("break"), 1), (Pause("lunch"), 2), (MakeReady(), 3))
    assert [r.reason for r in records] == ["break", "lunch", "ready"]
    assert status.state is AgentState.READY and status.idle_since == T0 + 3 * S


def test_call_from_pause_returns_to_that_pause():
    status, _ = run(
        logged_in(paused="admin"),
        (CallStarted(call_id=9), 5),
        (CallEnded(wrap_up=timedelta(seconds=5)), 50),
        (WrapUpExpired(), 55),
    )
    assert status.state is AgentState.PAUSED and status.pause_reason == "admin"


def test_call_from_wrap_up_keeps_pause_request():
    status, _ = run(
        logged_in(),
        (CallStarted(), 0),
        (CallEnded(wrap_up=timedelta(seconds=60)), 5),
        (Pause("lunch"), 6),
        (CallStarted(call_id=2), 7),
        (CallEnded(), 20),
    )
    assert status.state is AgentState.PAUSED and status.pause_reason == "lunch"


def test_logout_paths():
    for prep in ((), ((Pause("x"), 1),), ((CallStarted(), 1), (CallEnded(timedelta(9)), 2))):
        status, records = run(logged_in(), *prep, (Logout(), 5))
        assert status.state is AgentState.LOGGED_OUT
        assert status == AgentStatus(7, AgentState.LOGGED_OUT, T0 + 5 * S)
        assert records[-1].reason == "logout"


def test_forced_logout_from_a_call_or_offer():
    for prep in ((CallStarted(), 1), (Offer(call_id=1), 1)):
        status, _ = run(logged_in(), prep)
        rejected(status, Logout(), _busy(status.state))
        status, _ = run(status, (Logout(forced=True), 2))
        assert status.state is AgentState.LOGGED_OUT


def _busy(state):
    return RejectReason.ON_A_CALL if state is AgentState.BUSY else RejectReason.OFFER_PENDING


# -------------------------------------------------------------------- rejections


def test_rejections_name_a_reason():
    out = AgentStatus(7)
    rejected(out, MakeReady(), RejectReason.NOT_LOGGED_IN)
    rejected(out, Pause("x"), RejectReason.NOT_LOGGED_IN)
    rejected(out, Offer(call_id=1), RejectReason.NOT_LOGGED_IN)
    rejected(out, Logout(), RejectReason.NOT_LOGGED_IN)
    ready = logged_in()
    rejected(ready, Login(), RejectReason.ALREADY_LOGGED_IN)
    rejected(ready, MakeReady(), RejectReason.ALREADY_READY)
    rejected(ready, Accept(), RejectReason.NO_OFFER)
    rejected(ready, OfferTimeout(), RejectReason.NO_OFFER)
    rejected(ready, CallEnded(), RejectReason.NOT_ON_A_CALL)
    rejected(ready, WrapUpExpired(), RejectReason.NOT_IN_WRAP_UP)
    rejected(ready, ExtendWrapUp(by=timedelta(seconds=5)), RejectReason.NOT_IN_WRAP_UP)
    rejected(ready, Pause(""), RejectReason.INVALID_ARGUMENT)
    offered, _ = run(ready, (Offer(call_id=1), 1))
    rejected(offered, Offer(call_id=2), RejectReason.OFFER_PENDING)
    rejected(offered, Pause("x"), RejectReason.OFFER_PENDING)
    rejected(offered, CallStarted(), RejectReason.OFFER_PENDING)
    rejected(offered, MakeReady(), RejectReason.OFFER_PENDING)
    busy, _ = run(ready, (CallStarted(), 1))
    rejected(busy, Offer(call_id=2), RejectReason.ON_A_CALL)
    rejected(busy, CallStarted(), RejectReason.ON_A_CALL)
    rejected(busy, CallEnded(wrap_up=timedelta(seconds=-1)), RejectReason.INVALID_ARGUMENT)
    wrap, _ = run(busy, (CallEnded(wrap_up=timedelta(seconds=10)), 2))
    rejected(wrap, Offer(call_id=2), RejectReason.NOT_AVAILABLE)
    rejected(wrap, ExtendWrapUp(by=timedelta(0)), RejectReason.INVALID_ARGUMENT)
    paused, _ = run(ready, (Pause("x"), 1))
    rejected(paused, Offer(call_id=2), RejectReason.NOT_AVAILABLE)
    err = rejected(paused, Accept(), RejectReason.NO_OFFER)
    assert "accept" in str(err) and err.status is paused


def test_unknown_event_is_a_type_error():
    with pytest.raises(TypeError):
        transition(logged_in(), object(), T0)  # type: ignore[arg-type]


# -------------------------------------------------------------------- properties

events = st.one_of(
    st.builds(Login, paused=st.sampled_from([None, "admin"])),
    st.builds(Logout, forced=st.booleans()),
    st.just(MakeReady()),
    st.builds(Pause, reason=st.sampled_from(["break", "lunch", "no_answer"])),
    st.just(CancelPauseRequest()),
    st.builds(Offer, call_id=st.integers(1, 5)),
    st.just(Accept()),
    st.just(Decline()),
    st.just(OfferTimeout()),
    st.just(OfferWithdrawn()),
    st.builds(CallStarted, call_id=st.integers(1, 5)),
    st.builds(CallEnded, wrap_up=st.sampled_from([timedelta(0), timedelta(seconds=20)])),
    st.builds(ExtendWrapUp, by=st.sampled_from([timedelta(seconds=10), timedelta(seconds=-1)])),
    st.just(WrapUpExpired()),
    st.just(FinishWrapUp()),
)


def check_invariants(status):
    if status.state is AgentState.READY:
        assert status.call_id is None and status.pause_reason is None
        assert status.pause_requested is None and status.idle_since is not None
    if status.state is AgentState.PAUSED:
        assert status.pause_reason
    else:
        assert status.pause_reason is None
    if status.state is AgentState.WRAP_UP:
        assert status.wrap_up_until is not None
    else:
        assert status.wrap_up_until is None
    if status.state is AgentState.OFFERED:
        assert status.call_id is not None
    if status.state not in (AgentState.BUSY, AgentState.WRAP_UP):
        assert status.pause_requested is None
    if status.state is AgentState.LOGGED_OUT:
        assert status.call_id is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(events, st.integers(0, 60)), max_size=40))
def test_random_event_sequences_keep_invariants(steps):
    status = AgentStatus(1)
    now = T0
    records = []
    for event, gap in steps:
        now += gap * S
        try:
            result = transition(status, event, now)
        except IllegalTransition as err:
            assert err.status is status
            continue
        assert result.record.from_state is status.state
        assert result.record.to_state is result.status.state
        assert result.record.at == now
        if result.status.state is not status.state:
            assert result.status.since == now
        status = result.status
        records.append(result.record)
        check_invariants(status)
    # the report accounts for exactly the logged time
    if records:
        rows = time_in_states(records, "UTC", now + 5 * S, include_logged_out=True)
        total = sum(r.seconds for r in rows)
        assert total == pytest.approx((now + 5 * S - records[0].at).total_seconds())


# -------------------------------------------------------------------- state time


def rec(at, frm, to, reason=None, agent=1):
    return StateLogRecord(agent, at, frm, to, reason)


def test_time_in_states_simple_day():
    L, R, B, P = AgentState.LOGGED_OUT, AgentState.READY, AgentState.BUSY, AgentState.PAUSED
    records = [
        rec(T0, L, R, "login"),
        rec(T0 + 600 * S, R, B, "call_started"),
        rec(T0 + 900 * S, B, P, "lunch"),
        rec(T0 + 2700 * S, P, R, "ready"),
        rec(T0 + 3600 * S, R, L, "logout"),
    ]
    rows = time_in_states(records, "Europe/Oslo", T0 + 10 * 3600 * S)
    assert rows == (
        StateTime(1, date(2025, 6, 2), AgentState.READY, None, 600 + 900),
        StateTime(1, date(2025, 6, 2), AgentState.BUSY, None, 300),
        StateTime(1, date(2025, 6, 2), AgentState.PAUSED, "lunch", 1800),
    )


def test_time_in_states_splits_at_local_midnight():
    # 21:30Z on 2 June = 23:30 in Oslo; ready until 00:30Z = 02:30 Oslo next day
    start = datetime(2025, 6, 2, 21, 30, tzinfo=UTC)
    records = [rec(start, AgentState.LOGGED_OUT, AgentState.READY)]
    rows = time_in_states(records, "Europe/Oslo", start + timedelta(hours=3))
    assert [(r.day, r.seconds) for r in rows] == [
        (date(2025, 6, 2), 1800),
        (date(2025, 6, 3), 9000),
    ]
    rows = time_in_states(records, "UTC", start + timedelta(hours=3))
    assert [(r.day, r.seconds) for r in rows] == [
        (date(2025, 6, 2), 9000),
        (date(2025, 6, 3), 1800),
    ]


def test_time_in_states_dst_days_have_23_and_25_hours():
    for day, hours in ((date(2025, 3, 30), 23), (date(2025, 10, 26), 25)):
        start = datetime(2025, 3, 20, tzinfo=UTC)
        records = [rec(start, AgentState.LOGGED_OUT, AgentState.PAUSED, "admin")]
        rows = time_in_states(records, "Europe/Oslo", datetime(2025, 11, 30, tzinfo=UTC))
        (row,) = [r for r in rows if r.day == day]
        assert row.seconds == hours * 3600
        assert row.pause_reason == "admin"


def test_time_in_states_window_and_agents():
    R, P = AgentState.READY, AgentState.PAUSED
    records = [
        rec(T0, AgentState.LOGGED_OUT, R, agent=2),
        rec(T0, AgentState.LOGGED_OUT, P, "break", agent=1),
        rec(T0 + 3600 * S, R, AgentState.LOGGED_OUT, agent=2),
    ]
    rows = time_in_states(
        records, "UTC", T0 + 7200 * S, since=T0 + 1800 * S, include_logged_out=True
    )
    assert rows == (
        StateTime(1, T0.date(), P, "break", 5400),
        StateTime(2, T0.date(), AgentState.LOGGED_OUT, None, 3600),
        StateTime(2, T0.date(), R, None, 1800),
    )
    assert time_in_states([], "UTC", T0) == ()
