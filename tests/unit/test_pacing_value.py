"""Pacing, the opt-in marginal-value rule (``PacingConfig.value_seconds``): a dial's
abandon risk weighed against the agent idle time it is expected to fill."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.pacing import (
    DialLearner,
    PacingConfig,
    PacingState,
    TalkLearner,
    abandon_risk,
    build_estimates,
    decide,
    observe_dial,
    observe_talk,
)


def _estimates(answer_rate: float = 0.15, n: int = 2000):
    dials = DialLearner(max_weight=1e9)
    every = round(1 / answer_rate)
    for i in range(n):
        person = i % every == 0
        dials = observe_dial(dials, 12.0 if person else 25.0, person)
    calls = TalkLearner(max_weight=1e9)
    for _ in range(n // 5):
        calls = observe_talk(calls, 120.0)
    return build_estimates(dials, calls, wrapup_seconds=15.0)


EST = _estimates()


def _curves(ready: int, dialing=(), talking=(), wrapping=(), scale: float = 20.0):
    plain = abandon_risk(EST, ready, 0, dialing, talking, wrapping)
    valued = abandon_risk(EST, ready, 0, dialing, talking, wrapping, value_scale=scale)
    assert plain is not None and valued is not None
    return plain, valued


def test_without_value_seconds_the_decision_is_the_plain_risk_rule():
    s = PacingState(estimates=EST, ready_agents=3, talking=(40.0, 90.0), dialing=(2.0, 5.0))
    assert PacingConfig().value_seconds is None
    plain = abandon_risk(EST, 3, 0, s.dialing, s.talking, s.wrapping)
    assert plain is not None
    d = decide(s)
    # the plain rule: the last dial placed is within the accepted risk, one more is not
    assert plain(d.dials - 1) <= d.risk < plain(d.dials)


def test_a_dial_filling_idle_agents_is_charged_less_per_unit_of_risk():
    # idle: 4 agents ready and nothing ringing; covered: the same agents, but enough lines
    # ringing that they will be busy through the horizon anyway
    idle_plain, idle_valued = _curves(4)
    covered_plain, covered_valued = _curves(4, dialing=(3.0,) * 30)
    assert idle_valued(0) / idle_plain(0) < covered_valued(0) / covered_plain(0)


def test_value_weighting_dials_at_least_as_far_ahead_for_an_idle_team():
    base = PacingState(estimates=EST, ready_agents=4, talking=(100.0,) * 16)
    valued = replace(base, config=PacingConfig(value_seconds=5.0))
    assert decide(valued).dials >= decide(base).dials


@settings(max_examples=60, deadline=None)
@given(
    ready=st.integers(0, 30),
    dialing=st.lists(st.floats(0.0, 40.0), max_size=60),
    talking=st.lists(st.floats(0.0, 900.0), max_size=40),
    wrapping=st.lists(st.floats(0.0, 15.0), max_size=10),
    scale=st.floats(1.0, 100.0),
)
def test_the_value_weighted_curve_never_falls_with_more_dials(
    ready, dialing, talking, wrapping, scale
):
    # the controller's bisection relies on it
    _, valued = _curves(ready, tuple(dialing), tuple(talking), tuple(wrapping), scale)
    values = [valued(n) for n in range(0, 80, 3)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))
    assert all(0.0 <= v <= 1.0 for v in values)
