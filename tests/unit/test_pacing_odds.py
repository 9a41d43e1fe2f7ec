"""Per-contact answer odds (issue 18): the learner (core.answer_odds) and the pacer's
count of expected answers with each ringing line's own odds (a Poisson-binomial sum)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core import pacing_model as pm
from asterisk_cube.core.answer_odds import AnswerOdds, learn_odds, observe_odds, stratum
from asterisk_cube.core.pacing import PacingState, build_estimates, decide, learn_history


def _estimates(rate: float = 0.15):
    rng = random.Random(7)
    dials = []
    for _ in range(3000):
        u = rng.random()
        if u < rate:
            dials.append((min(30.0, rng.lognormvariate(2.4, 0.47)), True))
        else:
            dials.append((rng.uniform(15.0, 30.0), False))
    talks = [rng.lognormvariate(4.6, 0.65) for _ in range(1500)]
    return build_estimates(*learn_history(dials, talks), wrapup_seconds=15.0)


EST = _estimates()

states = st.builds(
    dict,
    ready=st.integers(0, 30),
    waiting=st.integers(0, 5),
    dialing=st.lists(st.floats(0, 70, allow_nan=False), max_size=120),
    talking=st.lists(st.floats(0, 900, allow_nan=False), max_size=60),
    wrapping=st.lists(st.floats(0, 15, allow_nan=False), max_size=20),
)


@given(states, st.integers(0, 40))
@settings(max_examples=150, deadline=None)
def test_with_every_line_at_the_campaigns_odds_it_is_todays_estimate_exactly(s, n):
    plain = pm.abandon_risk(
        EST, s["ready"], s["waiting"], s["dialing"], s["talking"], s["wrapping"]
    )
    ones = pm.abandon_risk(
        EST,
        s["ready"],
        s["waiting"],
        s["dialing"],
        s["talking"],
        s["wrapping"],
        odds=[1.0] * len(s["dialing"]),
    )
    assert plain is not None and ones is not None
    assert ones(n) == plain(n)


@given(states)
@settings(max_examples=100, deadline=None)
def test_decide_with_all_odds_one_is_decide_without_them(s):
    base = PacingState(
        estimates=EST,
        ready_agents=s["ready"],
        waiting_calls=s["waiting"],
        dialing=tuple(s["dialing"]),
        talking=tuple(s["talking"]),
        wrapping=tuple(s["wrapping"]),
    )
    with_odds = replace(base, dialing_odds=(1.0,) * len(s["dialing"]))
    assert decide(with_odds) == decide(base)


def _moments(dialing, odds):
    """The expected answers and their variance in the last bin, through the pacer's code."""
    k = len(pm.BIN_MIDS) - 1
    mean = [0.0] * len(pm.BIN_MIDS)
    var = [0.0] * len(pm.BIN_MIDS)
    pm._add_lines_with_odds(EST, dialing, odds, mean, var)
    return mean[k], var[k]


def test_lines_at_different_odds_vary_less_than_alike_lines_at_the_same_mean():
    # 20 fresh lines: half at 0.3x the campaign's odds, half at 1.7x (mean 1x) ...
    dialing = [1.0] * 20
    spread = [0.3, 1.7] * 10
    m_spread, v_spread = _moments(dialing, spread)
    m_alike, v_alike = _moments(dialing, [1.0 + 1e-12] * 20)
    q = EST.line_q[1][-1]
    assert m_alike == pytest.approx(20 * q)
    assert v_alike == pytest.approx(20 * q * (1 - q))
    # ... expect about as many answers (a line barely rung: the odds scale its hazard) ...
    assert m_spread == pytest.approx(m_alike, rel=0.02)
    # ... and a Poisson-binomial variance: sum q_i (1 - q_i), under n q (1 - q)
    assert v_spread < v_alike
    assert v_spread == pytest.approx(
        10 * (0.3 * q * (1 - 0.3 * q) + 1.7 * q * (1 - 1.7 * q)), rel=0.02
    )


def test_a_low_odds_line_that_rang_long_is_even_less_likely_a_person():
    # the campaign's hazard at 20 s already counts that people answer early; a contact
    # answering a third as often is a smaller share of the lines still ringing then
    young, _ = _moments([1.0], [1 / 3])
    old, _ = _moments([20.0], [1 / 3])
    assert young == pytest.approx(EST.line_q[1][-1] / 3, rel=0.05)
    assert old < EST.line_q[20][-1] / 3


@given(st.lists(st.floats(0.0, 12.0, allow_nan=False), min_size=1, max_size=40), st.floats(0, 60))
@settings(max_examples=100, deadline=None)
def test_per_line_chances_stay_probabilities(odds, age):
    mean, var = _moments([age] * len(odds), odds)
    assert 0.0 <= mean <= len(odds) + 1e-9
    assert var >= 0.0


def test_more_likely_lines_ringing_hold_back_more_dials():
    common = dict(estimates=EST, ready_agents=6, talking=(60.0,) * 17, dialing=(3.0,) * 10)
    likely = decide(PacingState(**common, dialing_odds=(2.0,) * 10)).dials
    alike = decide(PacingState(**common)).dials
    unlikely = decide(PacingState(**common, dialing_odds=(0.5,) * 10)).dials
    assert likely < alike < unlikely


# -- the learner ------------------------------------------------------------------


def test_strata_from_what_the_dialer_stores():
    assert stratum(1) == ("new", "1", "")
    assert stratum(2, "no_answer") == ("no_answer", "2", "")
    assert stratum(9, "callback", "web") == ("callback", "4", "web")
    assert stratum(3, "something else")[0] == "other"


def test_a_list_where_every_contact_looks_alike_gives_every_line_the_campaigns_odds():
    rng = random.Random(1)
    odds = learn_odds((stratum(1), rng.random() < 0.15) for _ in range(5000))
    assert odds.multiplier(stratum(1)) == 1.0
    assert odds.multiplier(stratum(2, "no_answer")) == 1.0  # never seen: its parent's


def test_the_learner_finds_the_contacts_who_answer_and_shrinks_thin_strata():
    rng = random.Random(2)
    kinds = [(stratum(1), 0.15, 0.6), (stratum(3, "no_answer"), 0.05, 0.3)]
    kinds.append((stratum(2, "callback"), 0.6, 0.1))
    items = []
    for _ in range(20000):
        v = rng.random()
        key, p = kinds[0][:2] if v < 0.6 else kinds[1][:2] if v < 0.9 else kinds[2][:2]
        items.append((key, rng.random() < p))
    odds = learn_odds(items)
    mean = 0.6 * 0.15 + 0.3 * 0.05 + 0.1 * 0.6
    assert odds.multiplier(stratum(2, "callback")) == pytest.approx(0.6 / mean, rel=0.1)
    assert odds.multiplier(stratum(3, "no_answer")) == pytest.approx(0.05 / mean, rel=0.2)
    # a stratum with 3 dials, all answered, is pulled towards its parent, not to 1.0
    few = learn_odds([((("busy", "2", "")), True)] * 3, odds)
    assert mean < few.rate(("busy", "2", "")) < 0.5


@given(st.lists(st.tuples(st.sampled_from([stratum(1), stratum(2, "busy")]), st.booleans())))
@settings(max_examples=50, deadline=None)
def test_one_by_one_is_the_same_as_at_once(items):
    one = AnswerOdds()
    for key, person in items:
        one = observe_odds(one, key, person)
    assert one == learn_odds(items)


def test_counts_fade_but_keep_their_ratios():
    odds = learn_odds([(stratum(1), i % 5 == 0) for i in range(7000)], AnswerOdds(max_weight=1000))
    dials, persons = odds.counts[()]
    assert dials <= 1000
    assert math.isclose(persons / dials, 0.2, rel_tol=0.01)
