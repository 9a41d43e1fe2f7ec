"""Discrete-event simulator of an outbound campaign, driving the product's pacing core.

    python -m bench.dialer_sim          # every scenario: 10 seeds, 8-hour shifts (long, 2 cores)
    python -m bench.dialer_sim --quick  # 2 seeds, 2-hour shifts: a smoke run
    python -m bench.dialer_sim --scenarios 20x15 drift --seeds 3
    python -m bench.dialer_sim --one predictive --scenarios 50x5   # per-seed lines
    python -m bench.dialer_sim --one shared --scenarios 20x15mix   # one shared answer rate
    python -m bench.dialer_sim --one 'predictive:{"value_seconds": 20}' --scenarios 5x15
    python -m bench.dialer_sim --micro  # decision time only (p50/p99, estimate rebuild)

The model (issue 6, widened by issue 18) so figures compare across runs:
ring time lognormal mean 12 s, sd 6 s, capped at 30 s; a person answers the
scenario's share of dials; answering machines answer 10 % (same ring time) and
hold the line for AMD_SECONDS (3 s) while AMD listens, ringing as far as the
pacer knows; the rest are no-answer, detected after 15-30 s (uniform); talk
time lognormal mean 120 s, sd 90 s; wrap-up 15 s; 8-hour shifts. A call
answered by a person is abandoned when no agent is free within the live
dialer's connect window (``pacing.CONNECT_WINDOW``, 1.4 s: the 2 s rule less the
agent's 0.5 s to answer and the 0.1 s bridge margin; FIFO wait).

Scenarios (``SCENARIOS``): the issue-6 matrix cells (5/20/100 agents at 15 % and
35 %), 50 agents at 5 %, 10 agents at 25 % and 30 at 8 % (cells between the
others), 20 agents whose list moves from 10 % to 30 % answer at
hour 4 (``drift``), 20 agents who pause (two 15-minute breaks and a 30-minute
lunch each) and log off early (a quarter of them, in the last two hours)
(``breaks``), and 20 agents behind a real AMD that listens 2-4 s to humans too
and calls 10 % of them machines (those are hung up: counted apart as
``amd_dropped``, the product cannot see them) (``amd``); and mixed-list twins of
20x15, 5x35, 50x5, 100x15 and drift (``20x15mix``...: the same mean answer rate,
contacts of seven kinds the dialer can see, ``MIX``).

Policies: the product's predictive mode and its power mode (1 line per ready
agent) — both through ``asterisk_cube.core.pacing.decide``, the function the
live dialer calls, with the settings a new campaign gets (``DEFAULT_MAX_DIAL_RATIO``,
3 % cap, each ringing line paced on its contact's learned answer odds as shipped:
``shared`` is the predictive pacer with one answer rate for every line, run 6's) and
estimates learned online from the simulated outcomes and rebuilt
every 20 observations or 5 s like the live dialer's ``Learning`` — the best
fixed dial ratio that stays under 3 % in every seed (two families are searched:
lines per ready agent, and VICIdial's RATIO dial level = lines per active agent
counting calls in progress), VICIdial's ADAPT_HARD_LIMIT dial level
(``bench.baselines``) and the oracle bound (an agent is never idle except in
wrap-up: talk / (talk + wrap-up)).

Every policy decides like the live dialer: on a clock tick (1 s), on every line
event (a line stops ringing, a call is abandoned) and on every agent state change
(call ends, wrap-up ends, pause, resume, log-off). Utilisation = talk time /
time logged in and not paused.
"""

from __future__ import annotations

from .matrix import (
    POLICY_ORDER,
    TARGETS,
    Summary,
    check_targets,
    format_seeds,
    format_table,
    machine_info,
    microbenchmark,
    run_matrix,
    search_fixed,
    summarise,
)
from .model import (
    AMD_FALSE_MACHINE,
    AMD_HUMAN_MAX,
    AMD_HUMAN_MIN,
    AMD_SECONDS,
    CAP,
    DEFAULT_SCENARIOS,
    EV_DEADLINE,
    EV_LINE,
    EV_LOGOFF,
    EV_PAUSE,
    EV_RESUME,
    EV_TALK_END,
    EV_TICK,
    EV_WRAP_END,
    GRACE,
    LEVELS,
    MACHINE_RATE,
    NOANSWER_MAX,
    NOANSWER_MIN,
    READY_RATIOS,
    REBUILD_EVENTS,
    REBUILD_SECONDS,
    RING_CAP,
    RING_MEAN,
    RING_MU,
    RING_SD,
    RING_SIGMA,
    SCENARIOS,
    SEEDS,
    SHIFT_HOURS,
    TALK_MEAN,
    TALK_MU,
    TALK_SD,
    TALK_SIGMA,
    WINDOW_SECONDS,
    WRAPUP,
    RunResult,
    Scenario,
)
from .policies import (
    CorePolicy,
    DialLevel,
    Policy,
    ReadyRatio,
    VicidialPolicy,
    make_policy,
)
from .sim import (
    Sim,
    oracle,
    run_one,
    worst_bucket,
    worst_window,
)

__all__ = [
    "AMD_FALSE_MACHINE",
    "AMD_HUMAN_MAX",
    "AMD_HUMAN_MIN",
    "AMD_SECONDS",
    "CAP",
    "DEFAULT_SCENARIOS",
    "EV_DEADLINE",
    "EV_LINE",
    "EV_LOGOFF",
    "EV_PAUSE",
    "EV_RESUME",
    "EV_TALK_END",
    "EV_TICK",
    "EV_WRAP_END",
    "GRACE",
    "LEVELS",
    "MACHINE_RATE",
    "NOANSWER_MAX",
    "NOANSWER_MIN",
    "POLICY_ORDER",
    "READY_RATIOS",
    "REBUILD_EVENTS",
    "REBUILD_SECONDS",
    "RING_CAP",
    "RING_MEAN",
    "RING_MU",
    "RING_SD",
    "RING_SIGMA",
    "SCENARIOS",
    "SEEDS",
    "SHIFT_HOURS",
    "TALK_MEAN",
    "TALK_MU",
    "TALK_SD",
    "TALK_SIGMA",
    "TARGETS",
    "WINDOW_SECONDS",
    "WRAPUP",
    "CorePolicy",
    "DialLevel",
    "Policy",
    "ReadyRatio",
    "RunResult",
    "Scenario",
    "Sim",
    "Summary",
    "VicidialPolicy",
    "check_targets",
    "format_seeds",
    "format_table",
    "machine_info",
    "make_policy",
    "microbenchmark",
    "oracle",
    "run_matrix",
    "run_one",
    "search_fixed",
    "summarise",
    "worst_bucket",
    "worst_window",
]
