"""Power and predictive pacing: how many new lines to dial now (F-D4).

Pure: state in, a number of new dials out. No I/O, no clock, no randomness.
The live dialer (ari/outbound) and the simulator (bench/dialer_sim.py) call the
same :func:`decide`.

The model behind the predictive mode
------------------------------------
Time from now is cut into a few bins over the next ~45 s (the longest a dial
rings). For the middle of each bin the pacer estimates, with a normal
approximation of sums of independent yes/no events,

* ``A(t)``: answered-by-a-person calls needing an agent by ``t`` — calls already
  waiting plus the lines still ringing (each one's chance of a person answering
  between its current age and ``age + t``, conditioned on it still ringing), and
* ``F(t)``: agents free by ``t + grace`` (2 s: a call answered at ``t`` may wait
  that long) — ready agents, agents whose wrap-up ends by then, and talking
  agents whose call (conditioned on its elapsed time, learned talk-time
  distribution) plus the wrap-up ends by then.

One more dial answered at ``t`` is abandoned when all agents free by ``t + 2 s``
are taken by calls answered before it, ``P(A(t) >= F(t))``; and if it takes an
agent, a call answered later may find none, so the pacer charges it the worst of
that probability from ``t`` to the end of the horizon. Averaged over when it
would be answered, that is the *marginal abandon risk* of one more dial (non-
decreasing in the number of dials). The pacer dials while it stays at or under
the accepted risk.

The accepted risk is a budget controller on the campaign's observed abandons
(abandoned / answered by a person, over the window the caller chose: the day,
or 30 days for the FTC rule), see :func:`risk_allowance`: under budget it
accepts more risk, over budget less, and at ``hard_fraction`` of the cap it goes
*conservative*: a tiny accepted risk and never more lines than agents that are
ready or in wrap-up. In every case it dials at least what power mode would (one
line per ready agent or agent whose wrap-up ends within the grace, less lines
ringing and calls waiting).

Cold start
----------
Everything above is only as safe as the estimates, and a campaign's first calls
are paced on a generic :class:`Prior` that may be far off: where 45 % of the
customers answer within 2 s, a prior of 20 % after ~10 s (worth 10 dials of
evidence) made the first burst of a 200-contact campaign abandon 3 of its first
13 answered calls. The answer-rate upper bound cannot cover that: it measures
sampling noise around the prior, not the prior being wrong, and no accepted risk
helps when the risk is measured with the wrong model. So until the campaign has
observed ``warmup_answers`` (20) dials answered by a person, the predictive
pacer dials exactly what power would, reason ``"learning"``: the one policy that
cannot abandon whatever the true distributions are (while its agents stay),
since every line ringing or call waiting has an agent that is free or will be
within the grace. Then it turns predictive on estimates that rest on the
campaign's own calls: the prior holds at most 2 of the person answers behind the
answer-time distribution (under 10 % after 20) and 10 of the dials behind the
answer rate, whose upper bound has narrowed with every dial. The price is the
first 20 answers at power pace, a few minutes of a shift (docs/benchmarks.md,
"Outbound pacing"). A campaign restarted with enough recent history
(:func:`learn_history`) starts warm.

Learned inputs (:class:`PacingEstimates`) come from :class:`DialLearner` and
:class:`TalkLearner` (immutable; ``observe_*`` return new learners, :func:`learn_history`
folds a past run's observations in at once) through :func:`build_estimates`. Build
estimates every few dozen events or seconds, not on every decision: the build is the
expensive part, the decision is cheap.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

__all__ = [
    "AbandonStats",
    "DialLearner",
    "PacingConfig",
    "PacingDecision",
    "PacingEstimates",
    "PacingMode",
    "PacingState",
    "Prior",
    "TalkLearner",
    "build_estimates",
    "decide",
    "default_estimates",
    "learn_history",
    "lines_to_dial",
    "marginal_abandon",
    "observe_dial",
    "observe_talk",
    "risk_allowance",
]

#: Regulators' rule: a call answered by a person must reach an agent within 2 s.
GRACE_SECONDS = 2.0
#: Ring-time tables cover ages 0..RING_TABLE_SECONDS seconds (1 s bins).
RING_TABLE_SECONDS = 60
#: Talk-time tables: TALK_STEP-second bins up to TALK_TABLE_SECONDS, exponential tail after.
TALK_STEP = 10.0
TALK_TABLE_SECONDS = 1800.0
#: Decision horizon bins (seconds from now). Narrow where ring answers are dense.
BIN_EDGES = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 35.0, 45.0)
BIN_MIDS = tuple((a + b) / 2 for a, b in pairwise(BIN_EDGES))
_NBINS = len(BIN_MIDS)
_SQRT2 = math.sqrt(2.0)
_VAR_FLOOR = 0.05


class PacingMode(StrEnum):
    POWER = "power"  # progressive: power_ratio lines per ready agent, nothing predicted
    PREDICTIVE = "predictive"


@dataclass(frozen=True, slots=True)
class AbandonStats:
    """Observed abandons for the campaign over the caller's window."""

    abandoned: int = 0
    answered: int = 0  # answered by a person, abandoned calls included
    window: str = "day"

    @property
    def rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class PacingConfig:
    mode: PacingMode = PacingMode.PREDICTIVE
    abandon_cap: float = 0.03
    #: the controller aims at this fraction of the cap ...
    target_fraction: float = 0.85
    #: ... and goes conservative once the observed rate reaches this fraction of it.
    hard_fraction: float = 0.9
    #: never more lines ringing (plus calls waiting) than this per eligible agent (>= 1).
    max_ratio: float = 10.0
    #: power mode: lines per ready agent.
    power_ratio: float = 1.0
    #: standard deviations of abandon noise kept in hand: the budget is
    #: min(target_fraction x cap x answered, cap x answered - cushion x sqrt(cap x answered)).
    cushion: float = 1.5
    #: marginal abandon probability accepted when exactly on budget ...
    base_risk: float = 0.025
    #: ... times exp(slack / slack_scale), slack = budget - abandoned (in calls),
    #: clamped to [min_risk, max_risk].
    slack_scale: float = 3.0
    min_risk: float = 0.002
    #: accepted risk once conservative (at most min_risk).
    conservative_risk: float = 0.001
    max_risk: float = 0.2
    #: predictive dials no further ahead than power until the campaign has seen this
    #: many dials answered by a person (its own, not the prior's): see "Cold start".
    warmup_answers: float = 20.0


@dataclass(frozen=True, slots=True)
class PacingEstimates:
    """Learned distributions, pre-digested for :func:`decide` by :func:`build_estimates`."""

    #: P(a dial is answered by a person within k s), k = 0..RING_TABLE_SECONDS.
    answer_cdf: tuple[float, ...]
    #: P(a dial is still ringing at k s).
    ringing_sf: tuple[float, ...]
    #: P(talk time > j * TALK_STEP).
    talk_sf: tuple[float, ...]
    talk_tail_mean: float
    wrapup_seconds: float
    grace_seconds: float
    # derived tables ---------------------------------------------------------
    #: line_q[a][k]: P(a line still ringing at age a is answered by a person by
    #: a + BIN_MIDS[k]).
    line_q: tuple[tuple[float, ...], ...] = field(repr=False)
    #: fresh dial: P(answered by a person by BIN_MIDS[k]).
    new_c: tuple[float, ...] = field(repr=False)
    #: fresh dial: P(answered by a person in bin k | answered within the horizon).
    new_w: tuple[float, ...] = field(repr=False)
    #: P(answered by a person within the horizon).
    answer_prob: float = 0.0
    #: dials answered by a person the campaign has observed (the prior's not counted).
    learned_answers: float = 0.0
    #: first bin where a talking agent can be free at all (mid + grace > wrap-up).
    talk_k0: int = _NBINS
    #: talk_p[j][k - talk_k0]: P(talking agent with elapsed in bin j is free by
    #: BIN_MIDS[k] + grace) (free = talk + wrap-up over).
    talk_p: tuple[tuple[float, ...], ...] = field(repr=False, default=())

    @property
    def answer_rate(self) -> float:
        return self.answer_cdf[-1]

    @property
    def talk_mean(self) -> float:
        s = self.talk_sf
        body = TALK_STEP * (sum(s) - 0.5 * (s[0] + s[-1]))
        return body + s[-1] * self.talk_tail_mean


@dataclass(frozen=True, slots=True)
class PacingState:
    """Everything the pacer looks at, as the adapter sees it now.

    Agents that are paused, or will pause after their current call or wrap-up,
    are left out (only ``paused_agents`` counts them, for display).
    """

    estimates: PacingEstimates
    config: PacingConfig = PacingConfig()
    ready_agents: int = 0
    #: seconds each talking agent has been in its current call.
    talking: tuple[float, ...] = ()
    #: seconds of wrap-up left for each agent in wrap-up.
    wrapping: tuple[float, ...] = ()
    paused_agents: int = 0
    #: seconds since each still-ringing line was dialed.
    dialing: tuple[float, ...] = ()
    #: calls answered by a person and not yet connected to an agent.
    waiting_calls: int = 0
    abandon: AbandonStats = AbandonStats()


@dataclass(frozen=True, slots=True)
class PacingDecision:
    dials: int
    #: "power", "predictive", "conservative" (observed rate at the hard limit), "learning"
    #: (predictive on a cold start: paced as power, see the module docstring) or "idle".
    reason: str
    #: marginal abandon probability accepted for this decision (predictive only).
    risk: float = 0.0


# ---------------------------------------------------------------------------
# decision


def risk_allowance(stats: AbandonStats, config: PacingConfig) -> float | None:
    """Marginal abandon probability the pacer may accept; ``None`` = conservative.

    A budget controller. The budget, in calls, is ``min(target_fraction x cap x
    answered, cap x answered - cushion x sqrt(cap x answered))``: a share of the
    cap, and less while the window holds few calls (abandons come in bursts; one
    is a large share of a small window). ``slack = budget - abandoned`` is what
    the campaign may still spend; the accepted risk is ``base_risk x exp(slack /
    slack_scale)``, clamped, so a campaign under budget dials harder and one
    over it backs off, and the rate converges on the budget. Once the observed
    rate reaches ``hard_fraction`` of the cap: conservative (``None``).
    Non-increasing in ``stats.abandoned`` for a fixed ``stats.answered``.
    """
    cap = config.abandon_cap
    x, n = stats.abandoned, stats.answered
    if cap <= 0 or (x > 0 and x >= cap * config.hard_fraction * n):
        return None
    # the budget: target_fraction of the cap, less a cushion for noise while the
    # window holds few calls (one early abandon is a large share of a small day)
    allowed = min(config.target_fraction * cap * n, cap * n - config.cushion * math.sqrt(cap * n))
    slack = allowed - x
    scale = max(1e-9, config.slack_scale)
    risk = config.base_risk * math.exp(max(-30.0, min(30.0, slack / scale)))
    return min(config.max_risk, max(config.min_risk, risk))


def decide(state: PacingState) -> PacingDecision:
    """How many new lines to dial now."""
    cfg = state.config
    ready = max(0, state.ready_agents)
    ringing = len(state.dialing)
    waiting = max(0, state.waiting_calls)
    eligible = ready + len(state.talking) + len(state.wrapping)
    room = max(0, math.floor(max(1.0, cfg.max_ratio) * eligible + 1e-9) - ringing - waiting)

    if cfg.mode == PacingMode.POWER:
        n = math.floor(cfg.power_ratio * ready + 1e-9) - ringing - waiting
        return PacingDecision(min(max(0, n), room), "power")

    grace = state.estimates.grace_seconds
    safe = ready + sum(1 for left in state.wrapping if left <= grace)
    n_safe = min(room, max(0, safe - ringing - waiting))
    risk = risk_allowance(state.abandon, cfg)
    if room == 0 or eligible == 0:
        return PacingDecision(n_safe, "idle")
    if state.estimates.learned_answers < cfg.warmup_answers:
        # cold start: the estimates still rest on the prior, which may be far off
        return PacingDecision(n_safe, "learning")
    if risk is None:
        # at the hard limit: a tiny accepted risk, and never more lines than agents
        # that are free or finishing their wrap-up (none of them is on a call)
        will_free = ready + len(state.wrapping)
        low = min(cfg.conservative_risk, cfg.min_risk)
        n = _predictive(state, low, room, ready, waiting)
        n = min(n, max(0, will_free - ringing - waiting))
        return PacingDecision(max(n, n_safe), "conservative", low)
    n = _predictive(state, risk, room, ready, waiting)
    return PacingDecision(max(n, n_safe), "predictive", risk)


def lines_to_dial(state: PacingState) -> int:
    return decide(state).dials


def _predictive(state: PacingState, risk: float, room: int, ready: int, waiting: int) -> int:
    theta = _marginal_abandon(state, ready, waiting)
    if theta is None:
        return 0
    # theta is non-decreasing in n: gallop then bisect for the first n over risk
    if theta(0) > risk:
        return 0
    lo, hi = 0, 1
    while hi <= room and theta(hi) <= risk:
        lo, hi = hi, hi * 2
    hi = min(hi, room + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if theta(mid) <= risk:
            lo = mid
        else:
            hi = mid
    # lo = largest n with theta(n) <= risk: dial lo + 1 lines (the 1st..(lo+1)-th)
    return min(room, lo + 1)


def marginal_abandon(state: PacingState, n: int) -> float:
    """Estimated P(one more dial is abandoned if a person answers it), given ``n``
    new dials placed now besides it (diagnostics and tests)."""
    theta = _marginal_abandon(state, max(0, state.ready_agents), max(0, state.waiting_calls))
    return 0.0 if theta is None else theta(n)


def _marginal_abandon(
    state: PacingState, ready: int, waiting: int
) -> Callable[[int], float] | None:
    est = state.estimates
    if est.answer_prob <= 0.0:
        return None
    grace = est.grace_seconds
    nb = _NBINS

    # calls needing an agent by mid k: waiting now + ringing lines answering by then
    mean_a = [float(waiting)] * nb
    var_a = [0.0] * nb
    if state.dialing:
        ages: dict[int, int] = {}
        last = len(est.line_q) - 1
        for age in state.dialing:
            a = int(age) if age > 0 else 0
            if a > last:
                continue
            ages[a] = ages.get(a, 0) + 1
        line_q = est.line_q
        for a, cnt in ages.items():
            row = line_q[a]
            for k in range(nb):
                q = row[k]
                if q > 0.0:
                    mean_a[k] += cnt * q
                    var_a[k] += cnt * q * (1.0 - q)

    # agents free by mid k + grace
    mean_f = [float(ready)] * nb
    var_f = [0.0] * nb
    if state.wrapping:
        lefts = sorted(state.wrapping)
        for k in range(nb):
            mean_f[k] += bisect_right(lefts, BIN_MIDS[k] + grace)
    if state.talking and est.talk_p:
        rows: dict[int, int] = {}
        last = len(est.talk_p) - 1
        for elapsed in state.talking:
            j = int(elapsed / TALK_STEP) if elapsed > 0 else 0
            if j > last:
                j = last
            rows[j] = rows.get(j, 0) + 1
        k0 = est.talk_k0
        talk_p = est.talk_p
        for j, cnt in rows.items():
            row = talk_p[j]
            for i, p in enumerate(row):
                if p > 0.0:
                    mean_f[k0 + i] += cnt * p
                    var_f[k0 + i] += cnt * p * (1.0 - p)

    new_c, new_w = est.new_c, est.new_w
    # normal approximation per bin; x0 = A - F + 0.5 (continuity)
    bins = []
    for k in range(nb):
        c = new_c[k]
        v0 = var_a[k] + var_f[k] + _VAR_FLOOR
        bins.append((new_w[k], mean_a[k] - mean_f[k] + 0.5, c, c * (1.0 - c), v0, math.sqrt(v0)))
    bins.reverse()  # latest bin first: the suffix maximum runs backwards

    def theta(n: int) -> float:
        """P(the (n+1)-th new dial, answered in bin k, finds no agent or takes one a
        call answered later in the horizon needed): sum_k w_k max_{k' >= k} P(A >= F)."""
        total = 0.0
        worst = 0.0
        for w, x0, c, cv, v0, s0 in bins:
            x = x0 + n * c
            z = x / s0 if x > 0.0 else x / math.sqrt(v0 + n * cv)
            p = 0.5 * math.erfc(-z / _SQRT2)
            if p > worst:
                worst = p
            total += w * worst
        return total

    return theta


# ---------------------------------------------------------------------------
# learning


@dataclass(frozen=True, slots=True)
class Prior:
    """What the pacer assumes before a campaign has history (weights in pseudo-events)."""

    answer_rate: float = 0.2
    ring_mean: float = 10.0
    ring_sd: float = 6.0
    dial_timeout: float = 30.0
    dial_weight: float = 10.0
    #: the pacer uses the answer rate plus this many standard errors
    answer_z: float = 2.0
    talk_mean: float = 150.0
    talk_sd: float = 120.0
    talk_weight: float = 10.0


def _zeros(n: int) -> tuple[float, ...]:
    return (0.0,) * n


@dataclass(frozen=True, slots=True)
class DialLearner:
    """Counts of dial outcomes by whole seconds of ringing."""

    dials: float = 0.0
    person: tuple[float, ...] = _zeros(RING_TABLE_SECONDS + 1)  # answered by a person at k s
    ended: tuple[float, ...] = _zeros(RING_TABLE_SECONDS + 1)  # stopped ringing (any cause) at k s
    #: when ``dials`` passes this, all counts are halved (older history fades).
    max_weight: float = 3000.0

    @property
    def answer_rate(self) -> float:
        return sum(self.person) / self.dials if self.dials else 0.0


@dataclass(frozen=True, slots=True)
class TalkLearner:
    counts: tuple[float, ...] = _zeros(int(TALK_TABLE_SECONDS / TALK_STEP))
    over: float = 0.0  # calls longer than the table
    over_excess: float = 0.0  # their total seconds beyond the table
    max_weight: float = 2000.0

    @property
    def calls(self) -> float:
        return sum(self.counts) + self.over


def observe_dial(learner: DialLearner, ring_seconds: float, person: bool) -> DialLearner:
    """One dial stopped ringing after ``ring_seconds``: answered by a person or not
    (machine, no answer, busy, failure)."""
    k = min(RING_TABLE_SECONDS, max(0, int(ring_seconds)))
    ended = list(learner.ended)
    ended[k] += 1.0
    answered = learner.person
    if person:
        person_counts = list(answered)
        person_counts[k] += 1.0
        answered = tuple(person_counts)
    dials = learner.dials + 1.0
    ended_t = tuple(ended)
    if dials > learner.max_weight:
        dials /= 2.0
        ended_t = tuple(x / 2.0 for x in ended_t)
        answered = tuple(x / 2.0 for x in answered)
    return DialLearner(dials, answered, ended_t, learner.max_weight)


def observe_talk(learner: TalkLearner, seconds: float) -> TalkLearner:
    """One call with an agent lasted ``seconds``."""
    counts = learner.counts
    over, excess = learner.over, learner.over_excess
    j = int(max(0.0, seconds) / TALK_STEP)
    if j < len(counts):
        c = list(counts)
        c[j] += 1.0
        counts = tuple(c)
    else:
        over += 1.0
        excess += seconds - TALK_TABLE_SECONDS
    if sum(counts) + over > learner.max_weight:
        counts = tuple(x / 2.0 for x in counts)
        over /= 2.0
        excess /= 2.0
    return TalkLearner(counts, over, excess, learner.max_weight)


def learn_history(
    dials: Iterable[tuple[float, bool]] = (),
    talks: Iterable[float] = (),
    dial_learner: DialLearner | None = None,
    talk_learner: TalkLearner | None = None,
) -> tuple[DialLearner, TalkLearner]:
    """The learners after observing ``dials`` (ring seconds, answered by a person) and
    ``talks`` (seconds), oldest first: the same as calling :func:`observe_dial` and
    :func:`observe_talk` once per item (fading included), without building a learner per
    item. A restarted dialer loads its campaigns' recent calls this way."""
    dl = dial_learner or DialLearner()
    person, ended, count = list(dl.person), list(dl.ended), dl.dials
    for ring_seconds, answered in dials:
        k = min(RING_TABLE_SECONDS, max(0, int(ring_seconds)))
        ended[k] += 1.0
        if answered:
            person[k] += 1.0
        count += 1.0
        if count > dl.max_weight:
            count /= 2.0
            ended = [x / 2.0 for x in ended]
            person = [x / 2.0 for x in person]
    tl = talk_learner or TalkLearner()
    counts, over, excess = list(tl.counts), tl.over, tl.over_excess
    total = sum(counts) + over
    for seconds in talks:
        j = int(max(0.0, seconds) / TALK_STEP)
        if j < len(counts):
            counts[j] += 1.0
        else:
            over += 1.0
            excess += seconds - TALK_TABLE_SECONDS
        total += 1.0
        if total > tl.max_weight:
            counts = [x / 2.0 for x in counts]
            over /= 2.0
            excess /= 2.0
            total = sum(counts) + over
    return (
        DialLearner(count, tuple(person), tuple(ended), dl.max_weight),
        TalkLearner(tuple(counts), over, excess, tl.max_weight),
    )


def _lognormal_cdf(x: float, mean: float, sd: float) -> float:
    if x <= 0:
        return 0.0
    s2 = math.log(1.0 + (sd * sd) / (mean * mean))
    mu = math.log(mean) - s2 / 2.0
    return 0.5 * math.erfc(-(math.log(x) - mu) / math.sqrt(2.0 * s2))


def _interp(table: tuple[float, ...] | list[float], x: float, step: float = 1.0) -> float:
    pos = x / step
    if pos <= 0:
        return table[0]
    i = int(pos)
    if i >= len(table) - 1:
        return table[-1]
    f = pos - i
    return table[i] * (1.0 - f) + table[i + 1] * f


def build_estimates(
    dials: DialLearner | None = None,
    talk: TalkLearner | None = None,
    prior: Prior | None = None,
    wrapup_seconds: float = 15.0,
    grace_seconds: float = GRACE_SECONDS,
    in_call: tuple[float, ...] = (),
) -> PacingEstimates:
    """Blend observations with the prior and pre-digest them for :func:`decide`.

    ``in_call``: seconds so far of the calls agents are on now. They are
    censored talk times (Kaplan-Meier): without them, early in a day only the
    short calls have ended and the learned talk time would be too short.

    The answer probability used is an upper confidence bound
    (``prior.answer_z`` standard errors over the estimate): too high an
    estimate only makes the pacer careful, too low one makes it abandon, and a
    new campaign knows little.
    """
    dials = dials or DialLearner()
    talk = talk or TalkLearner()
    prior = prior or Prior()
    nring = RING_TABLE_SECONDS + 1

    # -- ringing: per-second person answers and ends, prior + observed
    pw = prior.dial_weight
    person = list(dials.person)
    ended = list(dials.ended)
    timeout = min(RING_TABLE_SECONDS, max(1, int(prior.dial_timeout)))
    prior_person = 0.0
    for k in range(min(nring, timeout)):
        p = prior.answer_rate * (
            _lognormal_cdf(k + 1.0, prior.ring_mean, prior.ring_sd)
            - _lognormal_cdf(float(k), prior.ring_mean, prior.ring_sd)
        )
        person[k] += pw * p
        ended[k] += pw * p
        prior_person += p
    ended[timeout] += pw * (1.0 - prior_person)  # the prior's other dials stop at the timeout
    total = dials.dials + pw
    p_hat = sum(person) / total if total > 0 else 0.0
    z = prior.answer_z
    p_ucb = min(1.0, p_hat + z * math.sqrt(p_hat * (1.0 - p_hat) / total) + z * z / (2 * total))
    inflate = p_ucb / p_hat if p_hat > 0 else 0.0
    answer_cdf = [0.0] * nring
    ringing_sf = [1.0] * nring
    acc_p = acc_e = 0.0
    for k in range(nring - 1):
        acc_p += person[k]
        acc_e += ended[k]
        answer_cdf[k + 1] = min(1.0, inflate * acc_p / total)
        ringing_sf[k + 1] = max(0.0, 1.0 - acc_e / total)

    # -- talk: Kaplan-Meier survival per TALK_STEP over prior + ended + in-progress calls
    nt = len(talk.counts)
    tw = prior.talk_weight
    counts = list(talk.counts)
    prev = 0.0
    for j in range(nt):
        cur = _lognormal_cdf((j + 1) * TALK_STEP, prior.talk_mean, prior.talk_sd)
        counts[j] += tw * (cur - prev)
        prev = cur
    prior_over = tw * (1.0 - prev)
    over = talk.over + prior_over
    tail_prior = max(prior.talk_mean, TALK_STEP)
    excess = talk.over_excess + prior_over * tail_prior
    censored = [0.0] * (nt + 1)  # in-progress calls by the bin they have reached
    for e in in_call:
        censored[min(nt, max(0, int(e / TALK_STEP)))] += 1.0
    # at risk in bin j: ended in bin >= j, longer than the table, in progress at bin >= j
    # (those that reached bin j count half: censored mid-bin)
    at_risk = over + censored[nt]
    at_risk_by_bin = [0.0] * nt
    for j in range(nt - 1, -1, -1):
        at_risk += counts[j]
        at_risk_by_bin[j] = at_risk + 0.5 * censored[j]
        at_risk += censored[j]
    talk_sf = [1.0] * (nt + 1)
    surv = 1.0
    for j in range(nt):
        r = at_risk_by_bin[j]
        if r > 0:
            surv *= max(0.0, 1.0 - counts[j] / r)
        talk_sf[j + 1] = surv
    tail_mean = excess / over if over > 0 else tail_prior

    return _digest(
        tuple(answer_cdf),
        tuple(ringing_sf),
        tuple(talk_sf),
        max(TALK_STEP, tail_mean),
        wrapup_seconds,
        grace_seconds,
        learned_answers=sum(dials.person),
    )


def _digest(
    answer_cdf: tuple[float, ...],
    ringing_sf: tuple[float, ...],
    talk_sf: tuple[float, ...],
    tail_mean: float,
    wrapup: float,
    grace: float,
    learned_answers: float = 0.0,
) -> PacingEstimates:
    horizon = BIN_EDGES[-1]
    line_q = []
    for a in range(len(answer_cdf)):
        s = ringing_sf[a]
        base = answer_cdf[a]
        if s <= 1e-9:
            line_q.append((0.0,) * _NBINS)
            continue
        row = tuple(min(1.0, max(0.0, (_interp(answer_cdf, a + m) - base) / s)) for m in BIN_MIDS)
        line_q.append(row)
    new_c = tuple(_interp(answer_cdf, m) for m in BIN_MIDS)
    answer_prob = _interp(answer_cdf, horizon)
    if answer_prob > 0:
        new_w = tuple(
            (_interp(answer_cdf, b) - _interp(answer_cdf, a)) / answer_prob
            for a, b in pairwise(BIN_EDGES)
        )
    else:
        new_w = (0.0,) * _NBINS

    def sf(x: float) -> float:
        end = (len(talk_sf) - 1) * TALK_STEP
        if x <= end:
            return _interp(talk_sf, x, TALK_STEP)
        return talk_sf[-1] * math.exp(-(x - end) / tail_mean)

    k0 = next((k for k, m in enumerate(BIN_MIDS) if m + grace - wrapup > 0), _NBINS)
    talk_p = []
    for j in range(len(talk_sf)):
        e = j * TALK_STEP
        s_e = sf(e)
        ended: list[float] = []
        for k in range(k0, _NBINS):
            d = BIN_MIDS[k] + grace - wrapup
            if s_e <= 1e-12:
                # beyond what the data covers: use the tail's memoryless rate
                ended.append(1.0 - math.exp(-d / tail_mean))
            else:
                ended.append(min(1.0, max(0.0, 1.0 - sf(e + d) / s_e)))
        talk_p.append(tuple(ended))
    return PacingEstimates(
        answer_cdf=answer_cdf,
        ringing_sf=ringing_sf,
        talk_sf=talk_sf,
        talk_tail_mean=tail_mean,
        wrapup_seconds=wrapup,
        grace_seconds=grace,
        line_q=tuple(line_q),
        new_c=new_c,
        new_w=new_w,
        answer_prob=answer_prob,
        talk_k0=k0,
        talk_p=tuple(talk_p),
        learned_answers=learned_answers,
    )


def default_estimates(wrapup_seconds: float = 15.0) -> PacingEstimates:
    """Estimates from the prior alone (a campaign with no history yet)."""
    return build_estimates(wrapup_seconds=wrapup_seconds)
