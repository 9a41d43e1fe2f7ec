"""Pacing decisions (core/pacing.py): scenarios, invariants, learners."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.pacing import (
    AbandonStats,
    DialLearner,
    PacingConfig,
    PacingMode,
    PacingState,
    TalkLearner,
    build_estimates,
    decide,
    default_estimates,
    learn_history,
    lines_to_dial,
    marginal_abandon,
    observe_dial,
    observe_talk,
    risk_allowance,
)


def _learned(answer_rate: float, talk: float = 120.0, n: int = 2000) -> object:
    """Estimates after ``n`` dials answered at ``answer_rate`` after 12 s (others end at
    25 s) and ``n // 5`` calls of ``talk`` seconds."""
    dials = DialLearner(max_weight=1e9)
    every = round(1 / answer_rate)
    for i in range(n):
        person = i % every == 0
        dials = observe_dial(dials, 12.0 if person else 25.0, person)
    calls = TalkLearner(max_weight=1e9)
    for _ in range(n // 5):
        calls = observe_talk(calls, talk)
    return build_estimates(dials, calls, wrapup_seconds=15.0)


EST = _learned(0.15)
EST_35 = _learned(0.35)
# nobody finishes a call soon: every call observed lasted 10 minutes
EST_LONG_CALLS = _learned(0.15, talk=600.0)
PREDICTIVE = PacingConfig()
POWER = PacingConfig(mode=PacingMode.POWER)


def state(**kw) -> PacingState:
    kw.setdefault("estimates", EST)
    kw.setdefault("config", PREDICTIVE)
    return PacingState(**kw)


# -- scenarios ------------------------------------------------------------------


def test_no_agents_no_dials():
    assert lines_to_dial(state()) == 0
    assert lines_to_dial(state(paused_agents=10)) == 0
    assert lines_to_dial(state(paused_agents=10, config=POWER)) == 0


def test_no_ready_agent_and_nobody_freeing_dials_nothing():
    s = state(estimates=EST_LONG_CALLS, talking=(5.0,) * 20)
    assert decide(s).dials == 0


def test_paused_agents_do_not_count():
    for cfg in (PREDICTIVE, POWER):
        base = state(config=cfg, ready_agents=2, talking=(30.0, 60.0))
        with_paused = replace(base, paused_agents=7)
        assert decide(with_paused).dials == decide(base).dials
    assert lines_to_dial(state(paused_agents=5)) == 0


def test_ready_agent_gets_a_line_at_once():
    assert lines_to_dial(state(ready_agents=1)) >= 1


def test_predictive_dials_ahead_of_agents_finishing_wrap_up():
    # nobody ready yet, four agents free within ~5 s: dial now so answers meet them
    s = state(wrapping=(3.0, 4.0, 5.0, 5.0), talking=(10.0,) * 16)
    assert lines_to_dial(s) > 0
    assert lines_to_dial(replace(s, config=POWER)) == 0


def test_predictive_dials_more_when_answers_are_rarer():
    s = dict(ready_agents=5, talking=(40.0,) * 15)
    assert lines_to_dial(state(**s)) > lines_to_dial(state(estimates=EST_35, **s))


def test_lines_already_ringing_and_waiting_calls_are_counted():
    free = state(ready_agents=4)
    busy = replace(free, dialing=(1.0,) * 20)
    assert lines_to_dial(busy) < lines_to_dial(free)
    queued = replace(free, waiting_calls=4)
    assert lines_to_dial(queued) == 0


def test_power_mode_is_one_line_per_ready_agent_minus_lines_dialing():
    assert lines_to_dial(state(config=POWER, ready_agents=5)) == 5
    assert lines_to_dial(state(config=POWER, ready_agents=5, dialing=(1.0, 3.0))) == 3
    assert lines_to_dial(state(config=POWER, ready_agents=2, dialing=(1.0,) * 4)) == 0
    # talking and wrapping agents get nothing in power mode
    s = state(config=POWER, ready_agents=1, talking=(100.0,) * 9, wrapping=(1.0,))
    assert lines_to_dial(s) == 1
    two = replace(POWER, power_ratio=2.0)
    assert lines_to_dial(state(config=two, ready_agents=3, dialing=(1.0,))) == 5


HARD = replace(PREDICTIVE, hard_fraction=0.9)  # the old switch, kept as a setting


@pytest.mark.parametrize("abandoned", [3, 4, 10])
def test_with_a_hard_limit_set_at_or_over_cap_goes_conservative(abandoned):
    s = state(
        config=HARD,
        ready_agents=2,
        wrapping=(1.0, 6.0, 12.0),
        talking=(100.0,) * 15,
        dialing=(2.0,),
        abandon=AbandonStats(abandoned=abandoned, answered=100),
    )
    d = decide(s)
    assert d.reason == "conservative"
    # never more lines than agents that will be free (ready + finishing wrap-up)
    assert len(s.dialing) + d.dials <= s.ready_agents + len(s.wrapping)
    assert d.dials <= lines_to_dial(replace(s, abandon=AbandonStats(0, 100)))


def test_conservative_still_serves_ready_agents():
    s = state(config=HARD, ready_agents=3, abandon=AbandonStats(abandoned=50, answered=100))
    assert decide(s).dials == 3
    assert decide(replace(s, config=PREDICTIVE)).dials >= 3


@pytest.mark.parametrize("abandoned", [3, 4, 10])
def test_over_the_cap_backs_off_without_a_switch(abandoned):
    """By default there is no conservative mode: over budget the accepted risk falls with
    every abandon down to the floor; the pacer dials no more lines than on budget and
    never fewer than power."""
    s = state(
        ready_agents=2,
        wrapping=(1.0, 6.0, 12.0),
        talking=(100.0,) * 15,
        dialing=(2.0,),
        abandon=AbandonStats(abandoned=abandoned, answered=100),
    )
    d = decide(s)
    assert d.reason == "predictive"
    fewer = risk_allowance(AbandonStats(abandoned - 1, 100), PREDICTIVE)
    assert d.risk < risk_allowance(AbandonStats(0, 100), PREDICTIVE)
    assert d.risk < fewer or d.risk == fewer == PREDICTIVE.min_risk
    if abandoned == 10:
        assert d.risk == pytest.approx(PREDICTIVE.min_risk, rel=0.05)  # about the floor
    assert d.dials <= lines_to_dial(replace(s, abandon=AbandonStats(0, 100)))
    assert d.dials >= max(0, s.ready_agents + 1 - len(s.dialing))  # power: ready + wrap <= 1.4 s


def test_the_accepted_risk_has_no_cliff():
    """One more abandon changes the accepted risk by the same factor wherever the rate
    is: no threshold (the old switch at 90 % of the cap) where the pace jumps."""
    risks = [risk_allowance(AbandonStats(x, 4000), PREDICTIVE) for x in range(90, 125)]
    assert all(r is not None for r in risks)
    free = [r for r in risks if PREDICTIVE.min_risk < r < PREDICTIVE.max_risk]
    steps = [b / a for a, b in itertools.pairwise(free)]
    assert len(steps) > 5
    assert max(steps) == pytest.approx(min(steps))  # exp(-1 / slack_scale) each
    assert min(risks) == PREDICTIVE.min_risk  # far over: the floor, not a mode switch


def test_running_under_target_accepts_more_risk():
    cfg = PREDICTIVE
    low = risk_allowance(AbandonStats(abandoned=0, answered=2000), cfg)
    on = risk_allowance(AbandonStats(abandoned=50, answered=2000), cfg)
    high = risk_allowance(AbandonStats(abandoned=53, answered=2000), cfg)
    assert low is not None and on is not None and high is not None
    assert low > on > high
    # 2.75 %: no switch by default, only less risk; with the hard limit set, conservative
    over = risk_allowance(AbandonStats(abandoned=55, answered=2000), cfg)
    assert over is not None and over < high
    assert risk_allowance(AbandonStats(abandoned=55, answered=2000), HARD) is None
    assert risk_allowance(AbandonStats(), cfg) == pytest.approx(cfg.base_risk)


def test_max_ratio_clamps_lines():
    cfg = replace(PREDICTIVE, max_ratio=2.0)
    s = state(config=cfg, ready_agents=10)
    assert lines_to_dial(s) == 20
    assert lines_to_dial(replace(s, dialing=(1.0,) * 15)) <= 5


def test_decision_is_pure_and_repeatable():
    s = state(ready_agents=3, talking=(50.0, 130.0), wrapping=(4.0,), dialing=(2.0, 9.0))
    assert decide(s) == decide(s) == decide(replace(s))


def test_marginal_abandon_grows_with_more_dials():
    s = state(ready_agents=2, talking=(60.0,) * 8, wrapping=(5.0,))
    risks = [marginal_abandon(s, n) for n in range(0, 40, 3)]
    assert risks == sorted(risks)
    assert risks[0] < 0.01 < risks[-1]


# -- invariants (Hypothesis) ------------------------------------------------------

ages = st.floats(min_value=0.0, max_value=40.0, allow_nan=False)
states = st.builds(
    PacingState,
    estimates=st.sampled_from([EST, EST_35, EST_LONG_CALLS, default_estimates()]),
    config=st.sampled_from([PREDICTIVE, replace(PREDICTIVE, max_ratio=3.0)]),
    ready_agents=st.integers(0, 30),
    talking=st.lists(st.floats(0.0, 900.0, allow_nan=False), max_size=40).map(tuple),
    wrapping=st.lists(st.floats(0.0, 15.0, allow_nan=False), max_size=10).map(tuple),
    paused_agents=st.integers(0, 5),
    dialing=st.lists(ages, max_size=60).map(tuple),
    waiting_calls=st.integers(0, 3),
    abandon=st.integers(0, 400).flatmap(
        lambda n: st.builds(AbandonStats, abandoned=st.integers(0, n // 10), answered=st.just(n))
    ),
)


@settings(max_examples=300, deadline=None)
@given(states, st.integers(1, 5))
def test_more_ready_agents_never_fewer_dials(s, extra):
    more = replace(s, ready_agents=s.ready_agents + extra)
    assert decide(more).dials >= decide(s).dials


@settings(max_examples=300, deadline=None)
@given(states, st.integers(1, 20))
def test_more_abandons_never_more_dials(s, extra):
    worse = replace(
        s,
        abandon=AbandonStats(
            min(s.abandon.answered, s.abandon.abandoned + extra), s.abandon.answered
        ),
    )
    assert decide(worse).dials <= decide(s).dials


@settings(max_examples=300, deadline=None)
@given(states)
def test_dials_within_bounds(s):
    for mode in PacingMode:
        d = decide(replace(s, config=replace(s.config, mode=mode)))
        assert d.dials >= 0
        eligible = s.ready_agents + len(s.talking) + len(s.wrapping)
        limit = math.floor(s.config.max_ratio * eligible + 1e-9)
        assert d.dials == 0 or len(s.dialing) + s.waiting_calls + d.dials <= limit


@settings(max_examples=200, deadline=None)
@given(states)
def test_power_mode_formula(s):
    d = decide(replace(s, config=POWER))
    assert d.dials == max(0, s.ready_agents - len(s.dialing) - s.waiting_calls)


# -- learners ----------------------------------------------------------------------


def test_dial_learner_counts_and_fades():
    learner = DialLearner(max_weight=100.0)
    for i in range(100):
        learner = observe_dial(learner, 10.5, person=i % 4 == 0)
    assert learner.weight == pytest.approx(100.0)
    assert learner.estimated_answer_rate == pytest.approx(0.25)
    learner = observe_dial(learner, 3.0, person=False)  # past max_weight: halved
    assert learner.weight == pytest.approx(50.5)
    assert learner.estimated_answer_rate == pytest.approx(12.5 / 50.5)
    # the exact totals the product reports are never faded
    assert (learner.dials, learner.persons) == (101, 25)
    assert learner.answer_rate == pytest.approx(25 / 101)


def test_estimates_follow_observations():
    assert EST.answer_rate == pytest.approx(0.15, abs=0.02)  # plus a small confidence margin
    assert EST.answer_rate >= 0.15
    assert EST_35.answer_rate == pytest.approx(0.35, abs=0.03)
    assert EST.talk_mean == pytest.approx(125.0, abs=10.0)  # 120 s calls in 10 s bins
    # a line still ringing at 20 s was not answered at 12 s: it will hardly be answered now
    assert EST.line_q[20][-1] < 0.01
    assert EST.line_q[0][-1] == pytest.approx(EST.answer_prob)


def test_answer_rate_is_pessimistic_while_history_is_short():
    fresh = default_estimates()
    assert fresh.answer_rate > 0.3  # prior 0.2 plus two standard errors of 10 pseudo-dials


def test_calls_in_progress_lengthen_the_talk_estimate():
    calls = TalkLearner()
    for _ in range(50):
        calls = observe_talk(calls, 30.0)
    short = build_estimates(talk=calls)
    censored = build_estimates(talk=calls, in_call=(400.0,) * 50)
    assert censored.talk_mean > short.talk_mean + 50.0


def test_talk_learner_keeps_long_calls_in_the_tail():
    calls = TalkLearner()
    calls = observe_talk(calls, 4000.0)
    assert calls.over == 1.0
    assert calls.over_excess == pytest.approx(2200.0)


@settings(max_examples=60, deadline=None)
@given(
    dials=st.lists(st.tuples(st.floats(-1.0, 90.0), st.booleans()), max_size=80),
    talks=st.lists(st.floats(0.0, 2500.0), max_size=80),
    weight=st.sampled_from([5.0, 17.0, 3000.0]),
)
def test_learn_history_is_observing_one_by_one(dials, talks, weight):
    """A restart's history fold gives exactly the learners the live run would have had,
    fading (halving past max_weight) included."""
    dl, tl = DialLearner(max_weight=weight), TalkLearner(max_weight=weight)
    one_dl, one_tl = dl, tl
    for ring, person in dials:
        one_dl = observe_dial(one_dl, ring, person)
    for seconds in talks:
        one_tl = observe_talk(one_tl, seconds)
    got_dl, got_tl = learn_history(dials, talks, dl, tl)
    assert got_dl.dials == one_dl.dials == len(dials) and got_dl.max_weight == weight
    assert got_dl.persons == one_dl.persons == sum(1 for _, p in dials if p)
    assert got_dl.weight == pytest.approx(one_dl.weight)
    assert got_dl.person == pytest.approx(one_dl.person)
    assert got_dl.ended == pytest.approx(one_dl.ended)
    assert (got_dl.recent_dials, got_dl.recent_person, got_dl.drifts) == pytest.approx(
        (one_dl.recent_dials, one_dl.recent_person, one_dl.drifts)
    )
    assert got_tl.counts == pytest.approx(one_tl.counts)
    assert (got_tl.over, got_tl.over_excess) == pytest.approx((one_tl.over, one_tl.over_excess))


def test_learn_history_moves_the_estimates_off_the_prior():
    # 30 % answer after 4 s, mixed through the history as a real list's calls are (all
    # answers first and then none would be a list that changed: see the drift tests)
    dials = [(4.0, True) if i % 10 < 3 else (25.0, False) for i in range(1000)]
    talks = [45.0] * 300
    learned, talk = learn_history(dials, talks)
    assert learned.answer_rate == pytest.approx(0.3)
    est = build_estimates(learned, talk)
    prior = default_estimates()
    assert est.answer_rate == pytest.approx(0.3, abs=0.05)
    assert abs(est.answer_rate - 0.3) < abs(prior.answer_rate - 0.3)
    assert est.talk_mean < 0.6 * prior.talk_mean  # 45 s calls, the prior says 150 s


# -- drift: the list changes mid-shift ------------------------------------------------


def _dials(learner: DialLearner, rate: float, n: int, rng) -> DialLearner:
    for _ in range(n):
        person = rng.random() < rate
        learner = observe_dial(learner, 12.0 if person else 25.0, person)
    return learner


@pytest.mark.parametrize(("before", "after"), [(0.10, 0.30), (0.30, 0.10)])
def test_a_changed_answer_rate_is_followed_within_a_few_hundred_dials(before, after):
    """3000 dials at one rate, then the list changes: within 300 dials (about five minutes
    for 20 agents) the learner is near the new rate, up or down, and the pacer's bound
    covers it (halving the counts every 3000 dials still said 14.6 % after 20 minutes)."""
    import random

    rng = random.Random(7)
    learner = _dials(DialLearner(), before, 3000, rng)
    assert learner.drifts == 0
    learner = _dials(learner, after, 300, rng)
    assert learner.drifts >= 1
    assert learner.estimated_answer_rate == pytest.approx(after, abs=0.05)
    assert build_estimates(learner).answer_rate >= after - 0.02


def test_a_drift_reweights_the_estimate_but_keeps_every_dial_counted():
    """The drift detector acts on the estimator's weighted counts only: the totals the
    product reports (and the dialer e2e checks, history + today) keep every dial (the
    first version cut them, 613 dials reported as 97)."""
    import random

    rng = random.Random(3)
    learner = _dials(DialLearner(), 0.10, 500, rng)
    assert learner.dials == 500
    persons = learner.persons
    learner = _dials(learner, 0.40, 300, rng)
    assert learner.drifts >= 1
    assert learner.weight < 800  # the estimate forgot the old list ...
    assert learner.dials == 800  # ... the count did not
    assert learner.persons > persons
    assert learner.answer_rate == pytest.approx(learner.persons / 800)
    # the restart fold agrees
    again = _dials(DialLearner(), 0.10, 500, random.Random(3))
    assert learn_history([], [], again)[0].dials == 500


def test_a_steady_list_is_not_mistaken_for_a_drift():
    import random

    rng = random.Random(11)
    learner = _dials(DialLearner(), 0.15, 20000, rng)
    assert learner.drifts <= 1  # a day of dials at one rate
    assert learner.estimated_answer_rate == pytest.approx(0.15, abs=0.015)
    assert learner.dials == 20000
