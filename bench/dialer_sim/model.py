"""The simulator's model: constants, scenarios, a run's result (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from asterisk_cube.core import pacing

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
