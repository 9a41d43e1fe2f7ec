"""The discrete-event simulator: one campaign, one seed, one policy."""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque

from asterisk_cube.core import pacing
from asterisk_cube.core.answer_odds import AnswerOdds, Stratum, observe_odds

from .model import (
    AMD_FALSE_MACHINE,
    AMD_HUMAN_MAX,
    AMD_HUMAN_MIN,
    AMD_SECONDS,
    EV_DEADLINE,
    EV_LINE,
    EV_LOGOFF,
    EV_PAUSE,
    EV_RESUME,
    EV_TALK_END,
    EV_TICK,
    EV_WRAP_END,
    FRESH,
    GRACE,
    MACHINE_RATE,
    NOANSWER_MAX,
    NOANSWER_MIN,
    REBUILD_EVENTS,
    REBUILD_SECONDS,
    RING_CAP,
    RING_MU,
    RING_SIGMA,
    SCENARIOS,
    TALK_MU,
    TALK_SIGMA,
    WINDOW_SECONDS,
    WRAPUP,
    RunResult,
    Scenario,
)
from .policies import Policy, make_policy


class Sim:
    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        policy: Policy,
        hours: float,
        *,
        time_decisions: bool = False,
    ):
        self.sc = scenario
        n_agents = scenario.agents
        self.n_agents = n_agents
        self.logged_in = n_agents
        self.p = scenario.answer_rate
        self.rng = random.Random(seed)
        self.policy = policy
        self.end = hours * 3600.0
        self.now = 0.0
        self.events: list = []
        self.seq = 0
        self.ready: deque[int] = deque(range(n_agents))
        self.talking: set[int] = set()
        self.wrapping: set[int] = set()
        #: agents who asked to pause or log off after their call/wrap-up (the pacer
        #: leaves them out), and those paused or logged off
        self.leaving: dict[int, str] = {}
        self.away: set[int] = set()
        self.avail_since = [0.0] * n_agents
        self.talk_start = [0.0] * n_agents
        self.wrap_end = [0.0] * n_agents
        self.lines: dict[int, float] = {}  # line id -> dial time (ringing as the pacer sees it)
        self.line_outcome: dict[int, int] = {}  # 0 no answer, 1 machine, 2 person, 3 dropped
        #: what no real pacer can see, kept for bench.pacing_headroom's clairvoyant policies:
        #: when each ringing line stops ringing, when each talking agent's call ends
        self.line_end: dict[int, float] = {}
        #: ... and when the far end picked up (AMD listening from then on; inf: never)
        self.line_pickup: dict[int, float] = {}
        self.talk_end = [0.0] * n_agents
        #: each ringing line's contact kind (what the dialer knows when it dials)
        self.line_key: dict[int, Stratum] = {}
        self.odds = AnswerOdds()
        self._mix = scenario.person_odds(scenario.answer_rate) if scenario.mix else ()
        self._mix_after = (
            scenario.person_odds(scenario.answer_rate_after)
            if scenario.mix and scenario.answer_rate_after is not None
            else self._mix
        )
        self.next_line = 0
        self.waiting: deque[int] = deque()  # call ids answered by a person, no agent yet
        self.waiting_set: set[int] = set()
        self.result = RunResult(
            policy.name, scenario.name, n_agents, scenario.answer_rate, seed, hours
        )
        self.dial_learner = pacing.DialLearner()
        self.talk_learner = pacing.TalkLearner()
        self.learn = policy.uses_learning
        self._learned = 0
        self._built_at = 0.0
        #: (time, abandoned) of every call answered by a person
        self.call_log: list = []
        self.time_decisions = time_decisions
        self.decision_times: list[float] = []
        if scenario.answer_rate_after is not None:
            self.drift_at = scenario.drift_hour * 3600.0
        else:
            self.drift_at = math.inf
        if scenario.breaks:
            self._plan_breaks()

    def _plan_breaks(self) -> None:
        rng = self.rng
        for a in range(self.n_agents):
            for lo, hi, minutes in ((1.0, 2.5, 15), (3.5, 4.5, 30), (5.5, 6.5, 15)):
                t = rng.uniform(lo, hi) * 3600.0
                self.push(t, EV_PAUSE, a)
                self.push(t + minutes * 60.0, EV_RESUME, a)
        for a in rng.sample(range(self.n_agents), self.n_agents // 4):
            self.push(rng.uniform(6.0, 8.0) * 3600.0, EV_LOGOFF, a)

    def talking_leaving(self) -> int:
        return sum(1 for a in self.leaving if a in self.talking) if self.leaving else 0

    def push(self, t: float, kind: int, item: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, item))

    def dial(self, n: int) -> None:
        rng = self.rng
        now = self.now
        p = self.sc.answer_rate_after if now >= self.drift_at else self.p
        real_amd = self.sc.amd == "real"
        mix = self._mix_after if now >= self.drift_at else self._mix
        key = FRESH
        for _ in range(n):
            if mix:
                # a mixed list: which kind of contact this dial is (the dialer sees it)
                v = rng.random()
                i = 0
                while i < len(mix) - 1 and v >= mix[i][0]:
                    i += 1
                _, p, key = mix[i]
            u = rng.random()
            if u < p:
                outcome = 2
                ring = picked = min(RING_CAP, rng.lognormvariate(RING_MU, RING_SIGMA))
                if real_amd:
                    ring += rng.uniform(AMD_HUMAN_MIN, AMD_HUMAN_MAX)
                    if rng.random() < AMD_FALSE_MACHINE:
                        outcome = 3
            elif u < p + MACHINE_RATE:
                outcome = 1
                picked = min(RING_CAP, rng.lognormvariate(RING_MU, RING_SIGMA))
                ring = picked + AMD_SECONDS
            else:
                outcome = 0
                ring = rng.uniform(NOANSWER_MIN, NOANSWER_MAX)
                picked = math.inf
            lid = self.next_line
            self.next_line += 1
            self.lines[lid] = now
            self.line_outcome[lid] = outcome
            self.line_end[lid] = now + ring
            self.line_pickup[lid] = now + picked
            self.line_key[lid] = key
            self.push(now + ring, EV_LINE, lid)
        self.result.dials += n

    def connect(self, agent: int) -> None:
        talk = self.rng.lognormvariate(TALK_MU, TALK_SIGMA)
        self.talking.add(agent)
        self.talk_start[agent] = self.now
        self.talk_end[agent] = self.now + talk
        self.result.connects += 1
        self.result.talk_seconds += min(talk, self.end - self.now)
        self.push(self.now + talk, EV_TALK_END, agent)

    def pace(self) -> None:
        t0 = time.perf_counter()
        n = self.policy.decide(self)
        dt_ = time.perf_counter() - t0
        self.result.decision_seconds += dt_
        if self.time_decisions:
            self.decision_times.append(dt_)
        self.result.decisions += 1
        if n > 0:
            self.dial(n)

    def _observed(self) -> None:
        """The live dialer's Learning: rebuild every REBUILD_EVENTS observations."""
        self._learned += 1
        if self._learned >= REBUILD_EVENTS:
            self._relearn()

    def _relearn(self) -> None:
        self.policy.relearn(self)
        self._learned = 0
        self._built_at = self.now

    def _go_away(self, agent: int, kind: str) -> None:
        self.away.add(agent)
        self.result.available_seconds += self.now - self.avail_since[agent]
        if kind == "logoff":
            self.logged_in -= 1

    def _agent_free(self, agent: int) -> None:
        """An agent becomes free (wrap-up over, or back from a pause)."""
        if self.waiting:
            call = self.waiting.popleft()
            self.waiting_set.discard(call)
            self.call_log.append((self.now, False))
            self.connect(agent)
        else:
            self.ready.append(agent)

    def run(self) -> RunResult:
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
                del self.line_end[item], self.line_pickup[item]
                key = self.line_key.pop(item)
                if self.learn:
                    self.dial_learner = pacing.observe_dial(
                        self.dial_learner, t - dial_time, outcome == 2
                    )
                    self.odds = observe_odds(self.odds, key, outcome == 2)
                    self._observed()
                if outcome == 3:
                    res.amd_dropped += 1
                elif outcome == 2:
                    res.answered += 1
                    if self.ready:
                        self.call_log.append((t, False))
                        self.connect(self.ready.popleft())
                    else:
                        self.waiting.append(item)
                        self.waiting_set.add(item)
                        self.push(t + GRACE, EV_DEADLINE, item)
            elif kind == EV_DEADLINE:
                if item not in self.waiting_set:
                    continue  # connected in time: nothing changed
                self.waiting_set.discard(item)
                self.waiting.remove(item)
                res.abandoned += 1
                self.call_log.append((t, True))
            elif kind == EV_TALK_END:
                self.talking.discard(item)
                self.wrapping.add(item)
                self.wrap_end[item] = t + WRAPUP
                if self.learn:
                    self.talk_learner = pacing.observe_talk(
                        self.talk_learner, t - self.talk_start[item]
                    )
                    self._observed()
                self.push(t + WRAPUP, EV_WRAP_END, item)
            elif kind == EV_WRAP_END:
                self.wrapping.discard(item)
                if item in self.leaving:
                    self._go_away(item, self.leaving.pop(item))
                else:
                    self._agent_free(item)
            elif kind in (EV_PAUSE, EV_LOGOFF):
                how = "pause" if kind == EV_PAUSE else "logoff"
                if item in self.leaving:
                    if how == "logoff" and self.leaving[item] == "pause":
                        self.leaving[item] = "logoff"
                    continue
                if item in self.away:
                    if how == "logoff":
                        self.logged_in -= 1
                        self.away.add(item)
                        self.leaving[item] = "gone"  # never back
                    continue
                if item in self.ready:
                    self.ready.remove(item)
                    self._go_away(item, how)
                else:
                    self.leaving[item] = how
            elif kind == EV_RESUME:
                if self.leaving.get(item) == "pause":
                    del self.leaving[item]  # still on the call: the pause is dropped
                elif item in self.away and item not in self.leaving:
                    self.away.discard(item)
                    self.avail_since[item] = t
                    self._agent_free(item)
            else:  # tick
                if self.learn and self._learned and t - self._built_at >= REBUILD_SECONDS:
                    self._relearn()
                self.push(t + 1.0, EV_TICK, 0)
            self.pace()
        for a in range(self.n_agents):
            if a not in self.away:
                res.available_seconds += self.end - self.avail_since[a]
        res.worst_window = worst_bucket(self.call_log)
        res.worst_sliding = worst_window(self.call_log)
        if self.decision_times:
            ts = sorted(self.decision_times)
            res.decision_p99_us = ts[min(len(ts) - 1, int(0.99 * len(ts)))] * 1e6
        return res


def worst_window(call_log: list, span: float = WINDOW_SECONDS) -> float:
    """Highest abandon rate over any ``span`` seconds (windows ending at each abandon;
    windows holding fewer than 30 answered calls are skipped: too few to mean a rate)."""
    times = [t for t, _ in call_log]
    worst = 0.0
    lo = 0
    abandons = 0
    ab_prefix = [0]
    for _, ab in call_log:
        abandons += ab
        ab_prefix.append(abandons)
    for hi, (t, ab) in enumerate(call_log):
        if not ab:
            continue
        while times[lo] < t - span:
            lo += 1
        n = hi - lo + 1
        if n >= 30:
            worst = max(worst, (ab_prefix[hi + 1] - ab_prefix[lo]) / n)
    return worst


def worst_bucket(call_log: list, span: float = WINDOW_SECONDS) -> float:
    """Highest abandon rate over the shift's consecutive ``span``-second windows (0-20
    min, 20-40 min, ...; windows with fewer than 30 answered calls skipped)."""
    buckets: dict[int, list[int]] = {}
    for t, ab in call_log:
        b = buckets.setdefault(int(t // span), [0, 0])
        b[0] += ab
        b[1] += 1
    return max((a / n for a, n in buckets.values() if n >= 30), default=0.0)


def oracle(scenario: Scenario, seed: int, hours: float) -> RunResult:
    """Agents never idle except in wrap-up: back-to-back talk + wrap-up, same talk model."""
    rng = random.Random(seed)
    end = hours * 3600.0
    res = RunResult("oracle", scenario.name, scenario.agents, scenario.answer_rate, seed, hours)
    for _ in range(scenario.agents):
        t = 0.0
        while t < end:
            talk = rng.lognormvariate(TALK_MU, TALK_SIGMA)
            res.talk_seconds += min(talk, end - t)
            res.connects += 1
            res.answered += 1
            t += talk + WRAPUP
    return res


def run_one(args: tuple[str, str, int, float]) -> RunResult:
    spec, scenario, seed, hours = args
    sc = SCENARIOS[scenario]
    if spec == "oracle":
        return oracle(sc, seed, hours)
    return Sim(
        sc, seed, make_policy(spec), hours, time_decisions=spec.startswith("predictive")
    ).run()
