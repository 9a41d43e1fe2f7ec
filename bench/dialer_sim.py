"""Discrete-event simulator of an outbound campaign, driving the product's pacing core.

    python -m bench.dialer_sim          # full matrix: 5 seeds, 8-hour shifts (minutes, 2 cores)
    python -m bench.dialer_sim --quick  # 2 seeds, 2-hour shifts: a smoke run
    python -m bench.dialer_sim --help

The model is fixed by issue 6 so figures compare across runs:
ring time lognormal mean 12 s, sd 6 s, capped at 30 s; a person answers 15 % or
35 % of dials; answering machines answer 10 % (same ring time, released by AMD
3 s later, never counted as answered by a person); the rest are no-answer,
detected after 15-30 s (uniform); talk time lognormal mean 120 s, sd 90 s;
wrap-up 15 s; 8-hour shifts, every agent logged in and unpaused the whole
shift; abandon = answered by a person and no agent within 2 s (FIFO wait).

Policies: the product's predictive mode and its power mode (1 line per ready
agent) — both through ``asterisk_cube.core.pacing.decide``, the function the
live dialer calls, with estimates learned online from the simulated outcomes —
the best fixed dial ratio that stays under 3 % in every seed (two families are
searched: lines per ready agent, and VICIdial's RATIO dial level = lines per
active agent counting calls in progress), VICIdial's ADAPT_HARD_LIMIT dial level
(``bench.baselines``) and the oracle bound (an agent is never idle except in
wrap-up: talk / (talk + wrap-up)).

Every policy decides once per simulated second and again whenever an agent
becomes free. Utilisation = talk time / logged-in time.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import random
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

from asterisk_cube.core import pacing
from bench.baselines import VicidialAdaptive, trivial_baseline

CAP = 0.03

# -- model (issue 6) ---------------------------------------------------------
RING_MEAN, RING_SD, RING_CAP = 12.0, 6.0, 30.0
MACHINE_RATE, AMD_SECONDS = 0.10, 3.0
NOANSWER_MIN, NOANSWER_MAX = 15.0, 30.0
TALK_MEAN, TALK_SD = 120.0, 90.0
WRAPUP = 15.0
GRACE = 2.0
SHIFT_HOURS = 8.0
SEEDS = 5
AGENT_COUNTS = (5, 20, 100)
ANSWER_RATES = (0.15, 0.35)

#: grids searched for the best fixed ratio (per ready agent / per active agent)
READY_RATIOS = (
    *(round(1.0 + 0.1 * i, 2) for i in range(20)),
    *(3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0),
)
LEVELS = tuple(round(1.0 + 0.1 * i, 2) for i in range(0, 31))  # 1.0 .. 4.0


def _lognormal(mean: float, sd: float) -> tuple[float, float]:
    s2 = math.log(1.0 + (sd * sd) / (mean * mean))
    return math.log(mean) - s2 / 2.0, math.sqrt(s2)


RING_MU, RING_SIGMA = _lognormal(RING_MEAN, RING_SD)
TALK_MU, TALK_SIGMA = _lognormal(TALK_MEAN, TALK_SD)

# event kinds (ordered: at equal times, lines end before agents free up before ticks)
EV_LINE, EV_TALK_END, EV_WRAP_END, EV_DEADLINE, EV_TICK = range(5)


@dataclass
class RunResult:
    policy: str
    agents: int
    answer_rate: float
    seed: int
    hours: float
    talk_seconds: float = 0.0
    dials: int = 0
    answered: int = 0  # by a person
    abandoned: int = 0
    connects: int = 0
    decisions: int = 0
    decision_seconds: float = 0.0

    @property
    def utilisation(self) -> float:
        return self.talk_seconds / (self.agents * self.hours * 3600.0)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def connects_per_agent_hour(self) -> float:
        return self.connects / (self.agents * self.hours)


# -- policies ------------------------------------------------------------------


class Policy:
    """A policy sees the simulator and returns how many lines to dial now."""

    name = "policy"
    uses_learning = False

    def decide(self, sim: Sim) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class CorePolicy(Policy):
    """The product: asterisk_cube.core.pacing.decide, estimates learned online."""

    uses_learning = True

    def __init__(
        self,
        mode: pacing.PacingMode,
        config: pacing.PacingConfig | None = None,
        prior: pacing.Prior | None = None,
    ):
        self.name = mode.value
        self.config = config or pacing.PacingConfig(mode=mode, abandon_cap=CAP)
        self.prior = prior or pacing.Prior()
        self.estimates = pacing.build_estimates(prior=self.prior, wrapup_seconds=WRAPUP)

    def decide(self, sim: Sim) -> int:
        now = sim.now
        state = pacing.PacingState(
            estimates=self.estimates,
            config=self.config,
            ready_agents=len(sim.ready),
            talking=tuple(now - sim.talk_start[a] for a in sim.talking),
            wrapping=tuple(sim.wrap_end[a] - now for a in sim.wrapping),
            dialing=tuple(now - t for t in sim.lines.values()),
            waiting_calls=len(sim.waiting),
            abandon=pacing.AbandonStats(sim.result.abandoned, sim.result.answered),
        )
        return pacing.decide(state).dials

    def relearn(self, sim: Sim) -> None:
        now = sim.now
        self.estimates = pacing.build_estimates(
            sim.dial_learner,
            sim.talk_learner,
            self.prior,
            WRAPUP,
            in_call=tuple(now - sim.talk_start[a] for a in sim.talking),
        )


class ReadyRatio(Policy):
    """Fixed ratio: ``ratio`` lines per ready agent (1.0 = progressive)."""

    def __init__(self, ratio: float):
        self.ratio = ratio
        self.name = f"ratio {ratio:g}/ready"

    def decide(self, sim: Sim) -> int:
        return math.floor(self.ratio * len(sim.ready) + 1e-9) - len(sim.lines) - len(sim.waiting)


class DialLevel(Policy):
    """VICIdial RATIO: level x (ready + talking agents) calls in progress, counting the
    calls already with agents (agents in wrap-up are paused in VICIdial's dispo screen)."""

    def __init__(self, level: float):
        self.level = level
        self.name = f"level {level:g}"

    def decide(self, sim: Sim) -> int:
        active = len(sim.ready) + len(sim.talking)
        goal = math.floor(self.level * active + 0.5)
        return goal - len(sim.lines) - len(sim.waiting) - len(sim.talking)


class VicidialPolicy(Policy):
    """VICIdial ADAPT_HARD_LIMIT (bench.baselines.VicidialAdaptive) driving DialLevel."""

    name = "vicidial adapt"

    def __init__(self):
        self.adapt = VicidialAdaptive(cap=CAP)
        self.next_adapt = 15.0

    def decide(self, sim: Sim) -> int:
        if sim.now >= self.next_adapt:
            self.adapt = self.adapt.sample(len(sim.ready), len(sim.waiting), sim.n_agents)
            self.adapt = self.adapt.adjust(sim.result.abandoned, sim.result.answered)
            self.next_adapt += 15.0
        active = len(sim.ready) + len(sim.talking)
        goal = math.floor(self.adapt.level * active + 0.5)
        return goal - len(sim.lines) - len(sim.waiting) - len(sim.talking)


# -- the simulator -------------------------------------------------------------


class Sim:
    def __init__(self, n_agents: int, answer_rate: float, seed: int, policy: Policy, hours: float):
        self.n_agents = n_agents
        self.p = answer_rate
        self.rng = random.Random(seed)
        self.policy = policy
        self.end = hours * 3600.0
        self.now = 0.0
        self.events: list = []
        self.seq = 0
        self.ready: deque[int] = deque(range(n_agents))
        self.talking: set[int] = set()
        self.wrapping: set[int] = set()
        self.talk_start = [0.0] * n_agents
        self.wrap_end = [0.0] * n_agents
        self.lines: dict[int, float] = {}  # line id -> dial time (still ringing)
        self.line_outcome: dict[int, int] = {}  # 0 no answer, 1 machine, 2 person
        self.next_line = 0
        self.waiting: deque[int] = deque()  # call ids answered by a person, no agent yet
        self.waiting_set: set[int] = set()
        self.result = RunResult(policy.name, n_agents, answer_rate, seed, hours)
        self.dial_learner = pacing.DialLearner()
        self.talk_learner = pacing.TalkLearner()
        self.learn = policy.uses_learning
        #: when a list, (line id, abandoned) is appended for every call answered by a person
        self.call_log: list | None = None

    def push(self, t: float, kind: int, item: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, item))

    def dial(self, n: int) -> None:
        rng = self.rng
        now = self.now
        for _ in range(n):
            u = rng.random()
            if u < self.p:
                outcome = 2
                ring = min(RING_CAP, rng.lognormvariate(RING_MU, RING_SIGMA))
            elif u < self.p + MACHINE_RATE:
                outcome = 1
                ring = min(RING_CAP, rng.lognormvariate(RING_MU, RING_SIGMA))
            else:
                outcome = 0
                ring = rng.uniform(NOANSWER_MIN, NOANSWER_MAX)
            lid = self.next_line
            self.next_line += 1
            self.lines[lid] = now
            self.line_outcome[lid] = outcome
            self.push(now + ring, EV_LINE, lid)
        self.result.dials += n

    def connect(self, agent: int) -> None:
        talk = self.rng.lognormvariate(TALK_MU, TALK_SIGMA)
        self.talking.add(agent)
        self.talk_start[agent] = self.now
        self.result.connects += 1
        self.result.talk_seconds += min(talk, self.end - self.now)
        self.push(self.now + talk, EV_TALK_END, agent)

    def pace(self) -> None:
        t0 = time.perf_counter()
        n = self.policy.decide(self)
        self.result.decision_seconds += time.perf_counter() - t0
        self.result.decisions += 1
        if n > 0:
            self.dial(n)

    def run(self) -> RunResult:
        relearn_every = 60.0
        next_relearn = relearn_every
        self.push(0.0, EV_TICK, 0)
        res = self.result
        while self.events:
            t, kind, _, item = heapq.heappop(self.events)
            if t >= self.end:
                break
            self.now = t
            if kind == EV_LINE:
                dial_time = self.lines.pop(item)
                outcome = self.line_outcome.pop(item)
                if self.learn:
                    self.dial_learner = pacing.observe_dial(
                        self.dial_learner, t - dial_time, outcome == 2
                    )
                if outcome == 2:
                    res.answered += 1
                    if self.ready:
                        if self.call_log is not None:
                            self.call_log.append((item, False))
                        self.connect(self.ready.popleft())
                    else:
                        self.waiting.append(item)
                        self.waiting_set.add(item)
                        self.push(t + GRACE, EV_DEADLINE, item)
            elif kind == EV_DEADLINE:
                if item in self.waiting_set:
                    self.waiting_set.discard(item)
                    self.waiting.remove(item)
                    res.abandoned += 1
                    if self.call_log is not None:
                        self.call_log.append((item, True))
            elif kind == EV_TALK_END:
                self.talking.discard(item)
                self.wrapping.add(item)
                self.wrap_end[item] = t + WRAPUP
                if self.learn:
                    self.talk_learner = pacing.observe_talk(
                        self.talk_learner, t - self.talk_start[item]
                    )
                self.push(t + WRAPUP, EV_WRAP_END, item)
            elif kind == EV_WRAP_END:
                self.wrapping.discard(item)
                if self.waiting:
                    call = self.waiting.popleft()
                    self.waiting_set.discard(call)
                    if self.call_log is not None:
                        self.call_log.append((call, False))
                    self.connect(item)
                else:
                    self.ready.append(item)
                    self.pace()
            else:  # tick
                if self.learn and t >= next_relearn:
                    self.policy.relearn(self)
                    next_relearn += relearn_every
                self.pace()
                self.push(t + 1.0, EV_TICK, 0)
        return res


def oracle(n_agents: int, answer_rate: float, seed: int, hours: float) -> RunResult:
    """Agents never idle except in wrap-up: back-to-back talk + wrap-up, same talk model."""
    rng = random.Random(seed)
    end = hours * 3600.0
    res = RunResult("oracle", n_agents, answer_rate, seed, hours)
    for _ in range(n_agents):
        t = 0.0
        while t < end:
            talk = rng.lognormvariate(TALK_MU, TALK_SIGMA)
            res.talk_seconds += min(talk, end - t)
            res.connects += 1
            res.answered += 1
            t += talk + WRAPUP
    return res


def make_policy(spec: str) -> Policy:
    if spec == "predictive":
        return CorePolicy(pacing.PacingMode.PREDICTIVE)
    if spec == "power":
        return CorePolicy(pacing.PacingMode.POWER)
    if spec == "vicidial":
        return VicidialPolicy()
    kind, _, value = spec.partition(":")
    if kind == "ratio":
        return ReadyRatio(float(value))
    if kind == "level":
        return DialLevel(float(value))
    raise ValueError(spec)


def run_one(args: tuple[str, int, float, int, float]) -> RunResult:
    spec, agents, rate, seed, hours = args
    if spec == "oracle":
        return oracle(agents, rate, seed, hours)
    return Sim(agents, rate, seed, make_policy(spec), hours).run()


# -- the benchmark matrix --------------------------------------------------------


@dataclass
class Summary:
    policy: str
    agents: int
    answer_rate: float
    utilisation: float
    util_min: float
    abandon_mean: float
    abandon_max: float
    connects_per_agent_hour: float
    seeds: int
    detail: str = ""
    runs: list = field(default_factory=list, repr=False)


def summarise(policy: str, runs: list[RunResult], detail: str = "") -> Summary:
    n = len(runs)
    return Summary(
        policy=policy,
        agents=runs[0].agents,
        answer_rate=runs[0].answer_rate,
        utilisation=sum(r.utilisation for r in runs) / n,
        util_min=min(r.utilisation for r in runs),
        abandon_mean=sum(r.abandoned for r in runs) / max(1, sum(r.answered for r in runs)),
        abandon_max=max(r.abandon_rate for r in runs),
        connects_per_agent_hour=sum(r.connects_per_agent_hour for r in runs) / n,
        seeds=n,
        detail=detail,
        runs=runs,
    )


def search_fixed(pool, scenarios, seeds, hours, family: str, grid) -> dict:
    """Per scenario, the grid value with the best mean utilisation among those whose
    abandon rate is under the cap in every seed (abandons grow with the ratio, so a
    bisection finds the largest compliant value, then its neighbours are checked)."""
    state = {sc: {"lo": 0, "hi": len(grid) - 1, "done": False, "tried": {}} for sc in scenarios}

    def evaluate(points):
        jobs = [
            (f"{family}:{grid[i]}", sc[0], sc[1], s, hours)
            for sc, i in points
            for s in range(seeds)
        ]
        results = list(pool.map(run_one, jobs, chunksize=1))
        out = {}
        for k, (sc, i) in enumerate(points):
            out[(sc, i)] = results[k * seeds : (k + 1) * seeds]
        return out

    # bisection for the largest compliant index, all scenarios at once
    for sc in scenarios:
        state[sc]["lo"], state[sc]["hi"] = -1, len(grid)
    while True:
        points = []
        for sc in scenarios:
            st = state[sc]
            if st["hi"] - st["lo"] > 1:
                points.append((sc, (st["lo"] + st["hi"]) // 2))
        if not points:
            break
        for (sc, i), runs in evaluate(points).items():
            st = state[sc]
            st["tried"][i] = runs
            if max(r.abandon_rate for r in runs) < CAP:
                st["lo"] = i
            else:
                st["hi"] = i
    # also check up to two compliant values below (utilisation is not always monotone)
    points = []
    for sc in scenarios:
        st = state[sc]
        for i in (st["lo"] - 1, st["lo"] - 2):
            if i >= 0 and i not in st["tried"]:
                points.append((sc, i))
    for (sc, i), runs in evaluate(points).items():
        state[sc]["tried"][i] = runs
    best = {}
    for sc in scenarios:
        ok = [
            (sum(r.utilisation for r in runs) / len(runs), i, runs)
            for i, runs in state[sc]["tried"].items()
            if max(r.abandon_rate for r in runs) < CAP
        ]
        if not ok:
            best[sc] = None
            continue
        _, i, runs = max(ok, key=lambda x: x[0])
        best[sc] = (grid[i], runs)
    return best


def microbenchmark(repeat: int = 2000) -> dict:
    """Pacing decision time for 100 agents, beside a trivial baseline in the same run."""
    sim = Sim(100, 0.15, 12345, make_policy("predictive"), 0.5)
    snap = {}

    class Probe(CorePolicy):
        def decide(self, s: Sim) -> int:
            n = super().decide(s)
            if s.now >= 1200 and "state" not in snap:
                now = s.now
                snap["state"] = pacing.PacingState(
                    estimates=self.estimates,
                    config=self.config,
                    ready_agents=len(s.ready),
                    talking=tuple(now - s.talk_start[a] for a in s.talking),
                    wrapping=tuple(s.wrap_end[a] - now for a in s.wrapping),
                    dialing=tuple(now - t for t in s.lines.values()),
                    waiting_calls=len(s.waiting),
                    abandon=pacing.AbandonStats(s.result.abandoned, s.result.answered),
                )
            return n

    sim.policy = Probe(pacing.PacingMode.PREDICTIVE)
    sim.run()
    state = snap["state"]

    def clock(fn) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn(state)
            best = min(best, (time.perf_counter() - t0) / repeat)
        return best

    t_core = clock(pacing.decide)
    t_trivial = clock(trivial_baseline)
    return {
        "agents": 100,
        "ringing_lines": len(state.dialing),
        "talking": len(state.talking),
        "wrapping": len(state.wrapping),
        "ready": state.ready_agents,
        "decide_us": t_core * 1e6,
        "trivial_us": t_trivial * 1e6,
        "ratio": t_core / t_trivial,
    }


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
    }


POLICY_ORDER = ("predictive", "power", "best fixed", "vicidial", "oracle")


def run_matrix(seeds: int, hours: float, agents, rates, workers: int) -> dict:
    scenarios = [(a, r) for a in agents for r in rates]
    out: dict = {"summaries": []}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [
            (spec, a, r, s, hours)
            for (a, r) in scenarios
            for spec in ("predictive", "power", "vicidial", "oracle")
            for s in range(seeds)
        ]
        # the long runs first (100 agents) so the two workers finish together
        jobs.sort(key=lambda j: (-j[1], j[0] != "predictive"))
        results = list(pool.map(run_one, jobs, chunksize=1))
        by = {}
        for job, res in zip(jobs, results, strict=True):
            by.setdefault((job[0], job[1], job[2]), []).append(res)
        best_ready = search_fixed(pool, scenarios, seeds, hours, "ratio", READY_RATIOS)
        best_level = search_fixed(pool, scenarios, seeds, hours, "level", LEVELS)
    for a, r in scenarios:
        out["summaries"].append(summarise("predictive", by[("predictive", a, r)]))
        out["summaries"].append(summarise("power", by[("power", a, r)], "1 line per ready agent"))
        cands = []
        for fam, best in (("ready", best_ready[(a, r)]), ("level", best_level[(a, r)])):
            if best is not None:
                value, runs = best
                label = f"{value:g} lines/ready agent" if fam == "ready" else f"level {value:g}"
                cands.append(summarise("best fixed", runs, label))
        if cands:
            cands.sort(key=lambda s: -s.utilisation)
            win = cands[0]
            for other in cands[1:]:
                win.detail += f" (best {other.detail}: {other.utilisation:.3f})"
            out["summaries"].append(win)
        else:
            out["summaries"].append(
                Summary("best fixed", a, r, 0.0, 0.0, 0.0, 0.0, 0.0, 0, "none under cap")
            )
        out["summaries"].append(
            summarise("vicidial", by[("vicidial", a, r)], "ADAPT_HARD_LIMIT, max 3.0")
        )
        out["summaries"].append(summarise("oracle", by[("oracle", a, r)], "talk/(talk+wrap)"))
    return out


def check_targets(summaries: list[Summary]) -> list[tuple[str, bool, str]]:
    idx = {(s.policy, s.agents, s.answer_rate): s for s in summaries}
    checks = []
    worst = max(
        (s for s in summaries if s.policy in ("predictive", "power")), key=lambda s: s.abandon_max
    )
    checks.append(
        (
            "abandon < 3% in every seed of every scenario (product modes)",
            worst.abandon_max < CAP,
            f"worst {worst.abandon_max:.2%} ({worst.policy}, {worst.agents} agents, "
            f"{worst.answer_rate:.0%})",
        )
    )
    for agents, need in ((20, 0.78), (100, 0.85)):
        s = idx.get(("predictive", agents, 0.15))
        if s:
            checks.append(
                (
                    f"utilisation >= {need} with {agents} agents at 15%",
                    s.utilisation >= need,
                    f"{s.utilisation:.3f}",
                )
            )
    for rate in ANSWER_RATES:
        p, f = idx.get(("predictive", 5, rate)), idx.get(("best fixed", 5, rate))
        if p and f:
            checks.append(
                (
                    f"5 agents at {rate:.0%}: predictive >= best fixed ratio",
                    p.utilisation >= f.utilisation,
                    f"{p.utilisation:.3f} vs {f.utilisation:.3f} ({f.detail})",
                )
            )
    return checks


def format_table(summaries: list[Summary]) -> str:
    lines = [
        "| agents | answer | policy | utilisation (mean / min seed) | abandon (all seeds / "
        "worst seed) | connects per agent-hour | setting |",
        "|---:|---:|---|---|---|---:|---|",
    ]
    for s in summaries:
        if s.policy == "oracle":
            ab = "0 (by definition)"
        else:
            ab = f"{s.abandon_mean:.2%} / {s.abandon_max:.2%}"
        lines.append(
            f"| {s.agents} | {s.answer_rate:.0%} | {s.policy} | {s.utilisation:.3f} / "
            f"{s.util_min:.3f} | {ab} | {s.connects_per_agent_hour:.1f} | {s.detail} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.dialer_sim", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="2 seeds, 2-hour shifts")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--agents", type=int, nargs="*", default=list(AGENT_COUNTS))
    ap.add_argument("--rates", type=float, nargs="*", default=list(ANSWER_RATES))
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write the raw summaries to this file")
    ap.add_argument(
        "--one",
        help="run one policy (predictive, power, vicidial, oracle, "
        "ratio:R, level:L) for the given agents/rates and print per-seed results",
    )
    args = ap.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else SEEDS)
    hours = args.hours or (2.0 if args.quick else SHIFT_HOURS)

    if args.one:
        for a in args.agents:
            for r in args.rates:
                jobs = [(args.one, a, r, s, hours) for s in range(seeds)]
                with ProcessPoolExecutor(max_workers=args.workers) as pool:
                    runs = list(pool.map(run_one, jobs))
                for x in runs:
                    print(
                        f"{args.one} agents={a} p={r} seed={x.seed} util={x.utilisation:.3f} "
                        f"abandon={x.abandon_rate:.2%} ({x.abandoned}/{x.answered}) "
                        f"cph={x.connects_per_agent_hour:.1f} dials={x.dials} "
                        f"decide={x.decision_seconds / max(1, x.decisions) * 1e6:.0f}us"
                    )
        return 0

    t0 = time.perf_counter()
    out = run_matrix(seeds, hours, args.agents, args.rates, args.workers)
    micro = microbenchmark()
    wall = time.perf_counter() - t0
    summaries = out["summaries"]
    print(format_table(summaries))
    print()
    print(
        f"pacing decision, 100 agents ({micro['ringing_lines']} lines ringing, "
        f"{micro['talking']} talking, {micro['wrapping']} in wrap-up, {micro['ready']} ready): "
        f"{micro['decide_us']:.0f} us; trivial baseline {micro['trivial_us']:.2f} us "
        f"(x{micro['ratio']:.0f})"
    )
    for name, ok, detail in check_targets(summaries):
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    info = machine_info()
    print(
        f"seeds={seeds} hours={hours} wall={wall:.0f}s nproc={info['nproc']} cpu={info['cpu']} "
        f"python={info['python']}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "seeds": seeds,
                    "hours": hours,
                    "wall_seconds": wall,
                    "machine": info,
                    "micro": micro,
                    "summaries": [
                        {k: v for k, v in asdict(s).items() if k != "runs"} for s in summaries
                    ],
                },
                fh,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
