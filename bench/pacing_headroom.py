"""Where the predictive pacer's utilisation is lost: what perfect knowledge would buy.

    python -m bench.pacing_headroom --scenarios 20x15 5x35 --seeds 2
    python -m bench.pacing_headroom --policies knows-talk --scenarios 20x15 --hours 4

Runs ``bench.dialer_sim`` (same model, seeds, shipped ``PacingConfig`` and budget
controller, same online learners) with the product's predictive pacer fed more than any
live dialer can know, one source of uncertainty at a time:

* ``shipped``: the product as it is (``pacing.decide`` on the learned estimates);
* ``knows-talk``: every talking agent's call end is known exactly (the agent is handed
  to the pacer as a wrap-up with its true time left: remaining talk + wrap-up), so the
  agents' side of the prediction has no variance;
* ``knows-answers``: for every line ringing now the pacer knows whether a person will
  answer it and when (the lines nobody will answer are left out), so the calls side has
  no variance except for the dials it places now;
* ``knows-who``: which ringing lines a person will answer, not when (their answer times
  from the learned distribution): the most per-contact answer odds could give;
* ``knows-both``;
* ``sees-amd``: not clairvoyant, what a live dialer could also know: which lines have
  picked up and are still under AMD (answered; a person with the odds among pick-ups,
  through within AMD's 2-4 s), the other lines as the product sees them (only the
  ``amd`` scenario has AMD listen to people).

The gap between ``shipped`` and each clairvoyant row bounds what a better predictor of
that side could buy under the same controller (issue 18: the frontier of the control law
is flat; the question is which variance limits it). Nothing here is product code: the
clairvoyant risk is :func:`asterisk_cube.core.pacing.abandon_risk`'s formula with the
known answers as certain arrivals, swapped in for the run.
"""

from __future__ import annotations

import argparse
import math
import sys
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from asterisk_cube.core import pacing
from asterisk_cube.core import pacing_model as pm
from bench import dialer_sim as ds

POLICIES = ("shipped", "knows-talk", "knows-who", "knows-answers", "knows-both", "sees-amd")
_SQRT2 = math.sqrt(2.0)


def line_risk(
    est: pacing.PacingEstimates,
    ready: int,
    waiting: int,
    lines: Sequence[Sequence[float]],
    talking: Sequence[float],
    wrapping: Sequence[float],
) -> Callable[[int], float]:
    """``abandon_risk``'s theta(n), each line in flight given as its own row: P(a person
    answers it by ``BIN_MIDS[k]``) for every bin k. With ``est.line_q[age]`` rows it is
    the product's curve; a line known to be answered at t has the row 0 ... 0 1 ... 1."""
    grace = est.grace_seconds
    mids = pm.BIN_MIDS
    nb = len(mids)
    mean_a = [float(waiting)] * nb
    var_a = [0.0] * nb
    for row in lines:
        for k, q in enumerate(row):
            mean_a[k] += q
            var_a[k] += q * (1.0 - q)
    mean_f = [float(ready)] * nb
    var_f = [0.0] * nb
    lefts = sorted(wrapping)
    for k in range(nb):
        mean_f[k] += bisect_right(lefts, mids[k] + grace)
    last = len(est.talk_p) - 1
    for elapsed in talking:
        row = est.talk_p[min(last, int(max(0.0, elapsed) / pacing.TALK_STEP))]
        for i, p in enumerate(row):
            mean_f[est.talk_k0 + i] += p
            var_f[est.talk_k0 + i] += p * (1.0 - p)
    bins = []
    for k in range(nb):
        c = est.new_c[k]
        v0 = var_a[k] + var_f[k] + pm._VAR_FLOOR
        bins.append((est.new_w[k], mean_a[k] - mean_f[k] + 0.5, c, c * (1.0 - c), v0))
    bins.reverse()

    def theta(n: int) -> float:
        total = worst = 0.0
        for w, x0, c, cv, v0 in bins:
            x = x0 + n * c
            z = x / math.sqrt(v0) if x > 0.0 else x / math.sqrt(v0 + n * cv)
            worst = max(worst, 0.5 * math.erfc(-z / _SQRT2))
            total += w * worst
        return total

    return theta


def _certain(t: float) -> tuple[float, ...]:
    return tuple(1.0 if t <= m else 0.0 for m in pm.BIN_MIDS)


def _person(est: pacing.PacingEstimates, age: float) -> tuple[float, ...]:
    """A line a person will answer, not yet answered at ``age``: when, from the learned
    answer times (the odds of answering at all are 1)."""
    cdf = est.answer_cdf
    base = pm._interp(cdf, age)
    left = cdf[-1] - base
    if left <= 1e-9:
        return _certain(0.0)
    return tuple(min(1.0, (pm._interp(cdf, age + m) - base) / left) for m in pm.BIN_MIDS)


def _ringing(est: pacing.PacingEstimates, age: float) -> Sequence[float]:
    return est.line_q[min(len(est.line_q) - 1, int(max(0.0, age)))]


class Clairvoyant(ds.CorePolicy):
    """The product's predictive pacer, told the truth about talk ends and/or answers."""

    def __init__(self, talk: bool, answers: bool, amd: bool = False, who: bool = False):
        super().__init__(pacing.PacingMode.PREDICTIVE)
        self.knows_talk, self.knows_answers, self.sees_amd = talk, answers, amd
        self.knows_who = who
        self.name = "knows-" + ("both" if talk and answers else "talk" if talk else "answers")
        if amd:
            self.name = "sees-amd"
        if who:
            self.name = "knows-who"

    @staticmethod
    def _screening(sim: ds.Sim, listening: float) -> tuple[float, ...]:
        """A line picked up and still under AMD, ``listening`` seconds so far: what a live
        dialer could know (the scenario's odds of a person among pick-ups, and AMD's
        2-4 s on a person); a picked-up line passes AMD at once when AMD only holds
        machines, so one still listening there is a machine."""
        sc = sim.sc
        if sc.amd != "real":
            return (0.0,) * len(pm.BIN_MIDS)
        p = sim.sc.answer_rate_after if sim.now >= sim.drift_at else sim.p
        person = p * (1.0 - ds.AMD_FALSE_MACHINE) / (p + ds.MACHINE_RATE)
        lo = max(ds.AMD_HUMAN_MIN, listening)
        span = max(1e-9, ds.AMD_HUMAN_MAX - lo)
        return tuple(person * min(1.0, max(0.0, (listening + m - lo) / span)) for m in pm.BIN_MIDS)

    def decide(self, sim: ds.Sim) -> int:
        st = self.state(sim)
        now = sim.now
        talking, wrapping = st.talking, st.wrapping
        if self.knows_talk:
            talking = ()
            wrapping += tuple(
                sim.talk_end[a] - now + ds.WRAPUP for a in sim.talking if a not in sim.leaving
            )
        if not (self.knows_answers or self.sees_amd or self.knows_who):
            st = pacing.PacingState(
                estimates=st.estimates,
                config=st.config,
                ready_agents=st.ready_agents,
                talking=talking,
                wrapping=wrapping,
                dialing=st.dialing,
                waiting_calls=st.waiting_calls,
                abandon=st.abandon,
            )
            return pacing.decide(st).dials
        est = st.estimates
        rows: list[Sequence[float]] = []
        for lid, dialed in sim.lines.items():
            if self.knows_answers:
                if sim.line_outcome[lid] == 2:
                    rows.append(_certain(sim.line_end[lid] - now))
            elif self.knows_who:
                if sim.line_outcome[lid] == 2:
                    rows.append(_person(est, now - dialed))
            elif sim.line_pickup[lid] <= now:
                rows.append(self._screening(sim, now - sim.line_pickup[lid]))
            else:
                rows.append(_ringing(est, now - dialed))
        theta = line_risk(est, st.ready_agents, st.waiting_calls, rows, talking, wrapping)
        # the product's decide() (warm-up, budget controller, search) on this risk curve;
        # the simulator is single-threaded, so swapping the curve in for one call is safe
        original = pacing._risk_curve
        pacing._risk_curve = lambda _state, _ready, _waiting: theta  # type: ignore[assignment]
        try:
            return pacing.decide(st).dials
        finally:
            pacing._risk_curve = original  # type: ignore[assignment]


def make(policy: str) -> ds.Policy:
    if policy == "shipped":
        return ds.make_policy("predictive")
    if policy == "sees-amd":
        return Clairvoyant(False, False, amd=True)
    if policy == "knows-who":
        return Clairvoyant(False, False, who=True)
    talk = policy in ("knows-talk", "knows-both")
    answers = policy in ("knows-answers", "knows-both")
    return Clairvoyant(talk, answers)


def run(args: tuple[str, str, int, float]) -> ds.RunResult:
    policy, scenario, seed, hours = args
    result = ds.Sim(ds.SCENARIOS[scenario], seed, make(policy), hours).run()
    result.policy = policy
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pacing_headroom", description=__doc__)
    ap.add_argument("--policies", nargs="*", default=list(POLICIES), choices=POLICIES)
    ap.add_argument("--scenarios", nargs="*", default=["20x15"], choices=list(ds.SCENARIOS))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--hours", type=float, default=ds.SHIFT_HOURS)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(p, sc, s, args.hours) for sc in args.scenarios for p in args.policies for s in seeds]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run, jobs))
    for sc in args.scenarios:
        for p in args.policies:
            runs = [r for r in results if r.scenario == sc and r.policy == p]
            per_seed = ", ".join(f"{r.utilisation:.3f} / {r.abandon_rate:.2%}" for r in runs)
            mean = sum(r.utilisation for r in runs) / len(runs)
            print(f"{sc:>7} {p:>14}: mean {mean:.3f}  (seeds {per_seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
