"""The predictor conditions on what each line and each agent has done so far (issue 18).

A line's chance of a person answering comes from the learned ring-time distribution given
how long it has rung (a hazard, not a constant share of all dials), and a talking agent's
chance of being free from the learned talk-time distribution given the time already
talked (the residual, not the mean). Learned here from the simulator's model (bench/
dialer_sim/: ring lognormal 12 +- 6 s capped at 30, no-answers give up after 15-30 s,
talk lognormal 120 +- 90 s), so the tests speak of the distributions the benchmark uses.
"""

from __future__ import annotations

import math
import random

import pytest

from asterisk_cube.core.pacing import (
    PacingState,
    build_estimates,
    decide,
    learn_history,
    marginal_abandon,
)


def _lognormal(rng: random.Random, mean: float, sd: float) -> float:
    s2 = math.log(1.0 + sd * sd / (mean * mean))
    return rng.lognormvariate(math.log(mean) - s2 / 2.0, math.sqrt(s2))


def _model_estimates():
    rng = random.Random(18)
    dials = []
    for _ in range(3000):
        u = rng.random()
        if u < 0.15:
            dials.append((min(30.0, _lognormal(rng, 12.0, 6.0)), True))
        elif u < 0.25:  # a machine: same ring time, then AMD's 3 s
            dials.append((min(30.0, _lognormal(rng, 12.0, 6.0)) + 3.0, False))
        else:
            dials.append((rng.uniform(15.0, 30.0), False))
    talks = [_lognormal(rng, 120.0, 90.0) for _ in range(1500)]
    return build_estimates(*learn_history(dials, talks), wrapup_seconds=15.0)


EST = _model_estimates()


def _answer_within_horizon(age: int) -> float:
    return EST.line_q[age][-1]


def test_a_line_ringing_long_is_far_less_likely_to_be_answered():
    fresh, mid, old = (_answer_within_horizon(a) for a in (2, 14, 25))
    assert fresh == pytest.approx(0.15, abs=0.03)
    assert fresh > mid > old
    assert old < fresh / 5  # at 25 s only the slow tail of the ring times is left


def test_old_lines_hold_back_fewer_new_dials_than_young_ones():
    base = dict(estimates=EST, talking=(60.0,) * 18, ready_agents=2)
    young = decide(PacingState(dialing=(2.0,) * 12, **base)).dials
    old = decide(PacingState(dialing=(26.0,) * 12, **base)).dials
    assert old > young


def test_an_agent_long_in_a_call_is_expected_free_sooner_than_one_just_connected():
    """The residual talk time: with lognormal calls an agent 5 s in is rarely done within
    the horizon, one 150 s in (past the mode) far more often."""
    k = len(EST.talk_p[0]) - 1  # the last bin of the horizon
    just, long_in = EST.talk_p[0][k], EST.talk_p[15][k]
    assert long_in > 2 * just
    base = dict(estimates=EST, ready_agents=0, dialing=(8.0,) * 6)
    assert marginal_abandon(PacingState(talking=(150.0,) * 20, **base), 0) < marginal_abandon(
        PacingState(talking=(5.0,) * 20, **base), 0
    )
