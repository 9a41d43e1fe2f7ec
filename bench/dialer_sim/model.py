"""The simulator's model: constants, scenarios, a run's result (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from asterisk_cube.core import pacing
from asterisk_cube.core.answer_odds import Stratum, stratum

CAP = 0.03

# -- model (issue 6, issue 18) -------------------------------------------------
RING_MEAN, RING_SD, RING_CAP = 12.0, 6.0, 30.0
MACHINE_RATE, AMD_SECONDS = 0.10, 3.0
#: the "amd" scenario: AMD listens this long to a human too, and calls this share machines
AMD_HUMAN_MIN, AMD_HUMAN_MAX, AMD_FALSE_MACHINE = 2.0, 4.0, 0.10
NOANSWER_MIN, NOANSWER_MAX = 15.0, 30.0
TALK_MEAN, TALK_SD = 120.0, 90.0
WRAPUP = 15.0
GRACE = pacing.CONNECT_WINDOW
SHIFT_HOURS = 8.0
SEEDS = 10
#: the live dialer's Learning: rebuild after this many observations or seconds
REBUILD_EVENTS, REBUILD_SECONDS = 20, 5.0
#: abandon rate over any 20 minutes, reported per run (drift target: <= 5 %)
WINDOW_SECONDS = 1200.0


#: a list partway through its days: (last attempt's result, attempt, share, relative
#: odds). Half never dialed; retries of no-answers answer less the more often they rang
#: out; a busy was there; callbacks asked for and contacts reached before (an agent's
#: ``retry`` topic) answer most. Shares sum to 1.
MIX = (
    (None, 1, 0.50, 1.0),
    ("no_answer", 2, 0.20, 0.6),
    ("no_answer", 4, 0.10, 0.3),
    ("busy", 2, 0.05, 1.5),
    ("machine", 2, 0.05, 0.4),
    ("callback", 2, 0.07, 3.5),
    ("ended", 2, 0.03, 2.5),
)
#: a class's person answer rate at most (machines answer another MACHINE_RATE)
MAX_PERSON = 0.85
#: every contact of a homogeneous list: a first attempt
FRESH = stratum(1)


@dataclass(frozen=True)
class Scenario:
    name: str
    agents: int
    answer_rate: float
    #: the answer rate from ``drift_hour`` on (None: no drift)
    answer_rate_after: float | None = None
    drift_hour: float = 4.0
    #: "hold": humans pass AMD at once, machines hold AMD_SECONDS; "real": AMD listens
    #: 2-4 s to humans too and calls AMD_FALSE_MACHINE of them machines
    amd: str = "hold"
    #: agents take breaks and a quarter log off in the last two hours
    breaks: bool = False
    #: a mixed list (``MIX``): contacts whose odds differ in a way the dialer sees (how
    #: their last attempt ended, which attempt), at the same mean answer rate. None: every
    #: contact alike (and the random draws exactly those of the homogeneous model).
    mix: tuple[tuple[str, int, float, float], ...] | None = None

    def person_odds(self, rate: float) -> tuple[tuple[float, float, Stratum], ...]:
        """Per class of a mixed list: (cumulative share, person answer rate, stratum),
        the rates scaled so that their share-weighted mean is ``rate`` (each at most
        ``MAX_PERSON``)."""
        assert self.mix is not None
        lo, hi = 0.0, 10.0 / max(rate, 1e-6)
        for _ in range(60):  # the scale whose capped mean is the rate
            mid = (lo + hi) / 2
            mean = sum(share * min(MAX_PERSON, mid * rel) for _, _, share, rel in self.mix)
            lo, hi = (mid, hi) if mean < rate else (lo, mid)
        out = []
        acc = 0.0
        for last, attempt, share, rel in self.mix:
            acc += share
            out.append((acc, min(MAX_PERSON, lo * rel), stratum(attempt, last)))
        return tuple(out)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("5x15", 5, 0.15),
        Scenario("5x35", 5, 0.35),
        Scenario("20x15", 20, 0.15),
        Scenario("20x35", 20, 0.35),
        Scenario("100x15", 100, 0.15),
        Scenario("50x5", 50, 0.05),
        Scenario("10x25", 10, 0.25),
        Scenario("30x8", 30, 0.08),
        Scenario("drift", 20, 0.10, answer_rate_after=0.30),
        Scenario("breaks", 20, 0.15, breaks=True),
        Scenario("amd", 20, 0.15, amd="real"),
        # the targets' scenarios, each with a mixed list of the same mean answer rate
        Scenario("20x15mix", 20, 0.15, mix=MIX),
        Scenario("5x35mix", 5, 0.35, mix=MIX),
        Scenario("50x5mix", 50, 0.05, mix=MIX),
        Scenario("100x15mix", 100, 0.15, mix=MIX),
        Scenario("driftmix", 20, 0.10, answer_rate_after=0.30, mix=MIX),
    )
}
DEFAULT_SCENARIOS = tuple(SCENARIOS)

#: grids searched for the best fixed ratio (per ready agent / per active agent)
READY_RATIOS = (
    *(round(1.0 + 0.1 * i, 2) for i in range(20)),
    *(3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0),
)
LEVELS = tuple(round(1.0 + 0.1 * i, 2) for i in range(0, 31))  # 1.0 .. 4.0


def _lognormal(mean: float, sd: float) -> tuple[float, float]:
    s2 = math.log(1.0 + (sd * sd) / (mean * mean))
    return math.log(mean) - s2 / 2.0, math.sqrt(s2)


RING_MU, RING_SIGMA = _lognormal(RING_MEAN, RING_SD)
TALK_MU, TALK_SIGMA = _lognormal(TALK_MEAN, TALK_SD)

# event kinds (ordered: at equal times, lines end before agents free up before ticks)
EV_LINE, EV_TALK_END, EV_WRAP_END, EV_DEADLINE, EV_PAUSE, EV_RESUME, EV_LOGOFF, EV_TICK = range(8)


@dataclass
class RunResult:
    policy: str
    scenario: str
    agents: int
    answer_rate: float
    seed: int
    hours: float
    talk_seconds: float = 0.0
    available_seconds: float = 0.0  # logged in and not paused
    dials: int = 0
    answered: int = 0  # by a person (as the product sees it)
    abandoned: int = 0
    amd_dropped: int = 0  # humans AMD called machines (hung up; not seen by the product)
    connects: int = 0
    decisions: int = 0
    decision_seconds: float = 0.0
    decision_p99_us: float = 0.0
    worst_window: float = 0.0  # highest abandon rate over the shift's 20-minute windows
    worst_sliding: float = 0.0  # ... and over any 20 minutes (sliding)

    @property
    def utilisation(self) -> float:
        avail = self.available_seconds or self.agents * self.hours * 3600.0
        return self.talk_seconds / avail

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def connects_per_agent_hour(self) -> float:
        avail = self.available_seconds or self.agents * self.hours * 3600.0
        return self.connects / (avail / 3600.0)
