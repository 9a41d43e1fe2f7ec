"""Power and predictive pacing, the model: the risk that one more dial is abandoned (F-D4).

Pure: learned estimates and the lines and agents now in, probabilities out. No I/O, no
clock, no randomness. The controller (:mod:`asterisk_cube.core.pacing`) decides with it.

The model behind the predictive mode
------------------------------------
Time from now is cut into a few bins over the next ~45 s (the longest a dial
rings). For the middle of each bin the pacer estimates, with a normal
approximation of sums of independent yes/no events,

* ``A(t)``: answered-by-a-person calls needing an agent by ``t`` — calls already
  waiting plus the lines still ringing (each one's chance of a person answering
  between its current age and ``age + t``, conditioned on it still ringing), and
* ``F(t)``: agents free by ``t + grace`` (the live dialer's connect window,
  :func:`connect_window`, 1.4 s by default: a call answered at ``t`` may wait
  that long for an agent to free up) — ready agents, agents whose wrap-up ends by then, and talking
  agents whose call (conditioned on its elapsed time, learned talk-time
  distribution) plus the wrap-up ends by then.

One more dial answered at ``t`` is abandoned when all agents free by ``t + grace``
are taken by calls answered before it, ``P(A(t) >= F(t))``; and if it takes an
agent, a call answered later may find none, so the pacer charges it the worst of
that probability from ``t`` to the end of the horizon. Averaged over when it
would be answered, that is the *marginal abandon risk* of one more dial (non-
decreasing in the number of dials). The pacer dials while it stays at or under
the accepted risk.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from .pacing_learn import RING_TABLE_SECONDS, TALK_STEP, DialLearner, Prior, TalkLearner

__all__ = [
    "BIN_EDGES",
    "BIN_MIDS",
    "BRIDGE_MARGIN_SECONDS",
    "CONNECT_WINDOW",
    "GRACE_SECONDS",
    "MIN_AGENT_SECONDS",
    "PacingEstimates",
    "abandon_risk",
    "build_estimates",
    "connect_window",
    "default_estimates",
]

#: Regulators' rule: a call answered by a person must reach an agent within 2 s.
GRACE_SECONDS = 2.0
#: The live dialer's defaults around that rule: an agent must have at least
#: MIN_AGENT_SECONDS to answer (auto-answer) and bridging takes BRIDGE_MARGIN_SECONDS.
MIN_AGENT_SECONDS = 0.5
BRIDGE_MARGIN_SECONDS = 0.1


def connect_window(
    abandon_seconds: float = GRACE_SECONDS,
    min_agent_time: float = MIN_AGENT_SECONDS,
    bridge_margin: float = BRIDGE_MARGIN_SECONDS,
) -> float:
    """How long after a person answers an agent may still become free and take the
    call: the rule's seconds less the agent's answer time less the bridge margin.
    The live dialer gives up on a waiting call after exactly this, and the pacer plans
    with it (``grace_seconds``): one number from one place."""
    return max(0.0, abandon_seconds - min_agent_time - bridge_margin)


#: :func:`connect_window` for the shipped settings (1.4 s).
CONNECT_WINDOW = connect_window()
#: Decision horizon bins (seconds from now). Narrow where ring answers are dense.
BIN_EDGES = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 35.0, 45.0)
BIN_MIDS = tuple((a + b) / 2 for a, b in pairwise(BIN_EDGES))
_NBINS = len(BIN_MIDS)
_SQRT2 = math.sqrt(2.0)
_VAR_FLOOR = 0.05


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


def abandon_risk(
    est: PacingEstimates,
    ready: int,
    waiting: int,
    dialing: Sequence[float] = (),
    talking: Sequence[float] = (),
    wrapping: Sequence[float] = (),
    value_scale: float | None = None,
    odds: Sequence[float] = (),
) -> Callable[[int], float] | None:
    """``theta(n)``: P(one more dial is abandoned if a person answers it) with ``n`` new
    dials placed now besides it, given ``ready`` agents, ``waiting`` calls, the ages of
    the lines ``dialing``, the elapsed seconds of the calls agents are ``talking`` on and
    the seconds of wrap-up left ``wrapping``. Non-decreasing in ``n``. ``None`` when no
    dial can be answered (nothing to risk).

    ``odds``: each ringing line's answer odds relative to the campaign's (aligned with
    ``dialing``; :mod:`.answer_odds`); empty or all 1.0: every line at the campaign's rate,
    exactly as without them."""
    if est.answer_prob <= 0.0:
        return None
    grace = est.grace_seconds
    nb = _NBINS

    # calls needing an agent by mid k: waiting now + ringing lines answering by then
    mean_a = [float(waiting)] * nb
    var_a = [0.0] * nb
    if dialing and odds and any(m != 1.0 for m in odds):
        _add_lines_with_odds(est, dialing, odds, mean_a, var_a)
    elif dialing:
        ages: dict[int, int] = {}
        last = len(est.line_q) - 1
        for age in dialing:
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
    if wrapping:
        lefts = sorted(wrapping)
        for k in range(nb):
            mean_f[k] += bisect_right(lefts, BIN_MIDS[k] + grace)
    if talking and est.talk_p:
        rows: dict[int, int] = {}
        last = len(est.talk_p) - 1
        for elapsed in talking:
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
    if value_scale is not None:
        return _value_adjusted(bins, value_scale)

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


def _add_lines_with_odds(
    est: PacingEstimates,
    dialing: Sequence[float],
    odds: Sequence[float],
    mean_a: list[float],
    var_a: list[float],
) -> None:
    """Each ringing line with its own odds: a Poisson-binomial sum, not a binomial one.

    A line whose contact answers ``m`` times as often as the campaign's dials, still
    ringing at age ``a``, answers by ``a + t`` with ``line_q[a][k] x f``, where
    ``f = m S(a) / S_m(a)``: ``S(a)`` the share of all dials still ringing at ``a`` and
    ``S_m(a) = m P(a) + (1 - m p)(S(a) - P(a)) / (1 - p)`` that of this contact's kind
    (``P(a)`` the persons yet to answer at ``a``, ``p`` the answer rate): the same
    ring-time shape, its own share of persons among the lines left ringing (a low-odds
    line that rang long is even less likely a person). ``m = 1`` gives ``f = 1``. Lines
    are summed per age as ``sum f`` and ``sum f^2``: mean ``q sum f``, variance
    ``q sum f - q^2 sum f^2``."""
    cdf = est.answer_cdf
    sf = est.ringing_sf
    line_q = est.line_q
    p = cdf[-1]
    last = len(line_q) - 1
    acc: dict[int, list[float]] = {}
    for age, mult in zip(dialing, odds, strict=True):
        a = int(age) if age > 0 else 0
        if a > last:
            continue
        row = line_q[a]
        top = row[-1]
        if top <= 0.0:
            continue
        s_all = sf[a]
        left = p - cdf[a]
        m = max(0.0, mult)
        if p < 1.0:
            s_m = m * left + (1.0 - m * p) * (s_all - left) / (1.0 - p)
            f = m * s_all / s_m if s_m > 1e-12 else 1.0 / top
        else:
            f = 1.0
        if f * top > 1.0:
            f = 1.0 / top
        cell = acc.get(a)
        if cell is None:
            acc[a] = [f, f * f]
        else:
            cell[0] += f
            cell[1] += f * f
    for a, (s1, s2) in acc.items():
        row = line_q[a]
        for k in range(_NBINS):
            q = row[k]
            if q > 0.0:
                mean_a[k] += q * s1
                var_a[k] += max(0.0, q * s1 - q * q * s2)


_WIDTHS_REVERSED = tuple(reversed([b - a for a, b in pairwise(BIN_EDGES)]))


def _value_adjusted(
    bins: list[tuple[float, float, float, float, float, float]], value_scale: float
) -> Callable[[int], float]:
    """``theta(n) x value_scale / value(n)``: the abandon risk per second of agent idle
    time the dial is expected to fill (see :func:`abandon_risk`)."""
    widths = _WIDTHS_REVERSED

    def adjusted(n: int) -> float:
        total = 0.0
        worst = 0.0
        value = 0.0
        idle_after = 0.0  # sum over later bins of P(an agent idle there) x bin width
        for (w, x0, c, cv, v0, s0), width in zip(bins, widths, strict=True):
            x = x0 + n * c
            s = s0 if x > 0.0 else math.sqrt(v0 + n * cv)
            p = 0.5 * math.erfc(-x / s / _SQRT2)
            if p > worst:
                worst = p
            total += w * worst
            # an agent still idle at this bin after the n dials: A - F <= -1 (as theta: the
            # spread at n = 0 once over the line, so the curve stays monotone in n)
            y = x + 0.5
            sy = s0 if y > 0.0 else math.sqrt(v0 + n * cv)
            idle_after += width * 0.5 * math.erfc(y / (sy * _SQRT2))
            value += w * idle_after
        if value <= 1e-9:
            return 1.0
        return min(1.0, total * value_scale / value)

    return adjusted


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
    grace_seconds: float = CONNECT_WINDOW,
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
    total = dials.weight + pw
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
        cells: list[float] = []
        for k in range(k0, _NBINS):
            d = BIN_MIDS[k] + grace - wrapup
            if s_e <= 1e-12:
                # beyond what the data covers: use the tail's memoryless rate
                cells.append(1.0 - math.exp(-d / tail_mean))
            else:
                cells.append(min(1.0, max(0.0, 1.0 - sf(e + d) / s_e)))
        talk_p.append(tuple(cells))
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
