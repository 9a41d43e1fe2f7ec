"""Power and predictive pacing: how many new lines to dial now (F-D4).

Pure: state in, a number of new dials out. No I/O, no clock, no randomness.
The live dialer (dialer/service) and the simulator (bench/dialer_sim/) call the
same :func:`decide`.

By concept:

* :mod:`.pacing_learn`, the learners: what the campaign's calls taught (exact totals
  for reporting; a recency-weighted view that follows a changed list, for pacing);
* :mod:`.pacing_model`, the model: estimates built from the learners, and the
  marginal abandon risk of one more dial given the lines and agents now (how it is
  computed: that module's docstring);
* this module, the controller: how much of that risk to accept, and so how many lines
  to dial. It re-exports the other two: callers use ``asterisk_cube.core.pacing``.

The controller
--------------
The accepted risk is a budget controller on the campaign's observed abandons
(abandoned / answered by a person, over the window the caller chose: the day,
or 30 days for the FTC rule), see :func:`risk_allowance`: under budget it
accepts more risk, over budget less, smoothly down to a small floor (``min_risk``)
however far over budget it is. (A campaign may set ``hard_fraction`` to go
*conservative* at that fraction of the cap: a tiny accepted risk and never more
lines than agents that are ready or in wrap-up; by default there is no such
switch.) In every case it dials at least what power mode would (one
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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .pacing_learn import (
    RING_TABLE_SECONDS,
    TALK_STEP,
    TALK_TABLE_SECONDS,
    DialLearner,
    Prior,
    TalkLearner,
    learn_history,
    observe_dial,
    observe_talk,
)
from .pacing_model import (
    BIN_EDGES,
    BIN_MIDS,
    BRIDGE_MARGIN_SECONDS,
    CONNECT_WINDOW,
    GRACE_SECONDS,
    MIN_AGENT_SECONDS,
    PacingEstimates,
    abandon_risk,
    build_estimates,
    connect_window,
    default_estimates,
)

__all__ = [
    "BIN_EDGES",
    "BIN_MIDS",
    "BRIDGE_MARGIN_SECONDS",
    "CONNECT_WINDOW",
    "DEFAULT_MAX_DIAL_RATIO",
    "GRACE_SECONDS",
    "MIN_AGENT_SECONDS",
    "RING_TABLE_SECONDS",
    "TALK_STEP",
    "TALK_TABLE_SECONDS",
    "AbandonStats",
    "DialLearner",
    "PacingConfig",
    "PacingDecision",
    "PacingEstimates",
    "PacingMode",
    "PacingState",
    "Prior",
    "TalkLearner",
    "abandon_risk",
    "build_estimates",
    "connect_window",
    "decide",
    "default_estimates",
    "learn_history",
    "lines_to_dial",
    "marginal_abandon",
    "observe_dial",
    "observe_talk",
    "risk_allowance",
]

#: A new campaign's ``max_dial_ratio``: lines ringing (plus calls waiting) per agent at
#: most. Low enough to stop a runaway, high enough not to bind the pacer on low-answer
#: lists (at 5 % answer a ratio of 3 capped 8 % of decisions: docs/benchmarks.md).
DEFAULT_MAX_DIAL_RATIO = 10.0


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
    #: the controller aims at this fraction of the cap
    target_fraction: float = 0.85
    #: None (the default): no switch, the accepted risk falls smoothly with the slack
    #: left in the window's budget. A number: conservative once the observed rate
    #: reaches this fraction of the cap (the old cliff: a burst of abandons at 90 % of
    #: the cap held a campaign near power pace for most of an hour, docs/benchmarks.md).
    hard_fraction: float | None = None
    #: never more lines ringing (plus calls waiting) than this per eligible agent (>= 1).
    max_ratio: float = 10.0
    #: power mode: lines per ready agent.
    power_ratio: float = 1.0
    #: standard deviations of abandon noise kept in hand: the budget is
    #: min(target_fraction x cap x answered, cap x answered - cushion x sqrt(cap x answered)).
    cushion: float = 1.5
    #: marginal abandon probability accepted when exactly on budget ...
    base_risk: float = 0.05
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
    #: None: dial while the marginal abandon risk is under the accepted risk. A number
    #: (seconds): weigh the risk against the agent idle time the dial is expected to fill,
    #: dial while risk x value_seconds / idle filled is under the accepted risk.
    value_seconds: float | None = None


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
    #: each ringing line's answer odds relative to the campaign's (aligned with
    #: ``dialing``, see :mod:`.answer_odds`); empty: every line at the campaign's rate.
    dialing_odds: tuple[float, ...] = ()
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
    the campaign may still spend over the whole window; the accepted risk is
    ``base_risk x exp(slack / slack_scale)``, clamped to ``[min_risk, max_risk]``,
    so a campaign under budget dials harder and one over it backs off smoothly,
    and the rate converges on the budget: no threshold where the pace jumps. Only
    with ``hard_fraction`` set, once the observed rate reaches that fraction of
    the cap: conservative (``None``); and ``None`` when the cap is 0.
    Non-increasing in ``stats.abandoned`` for a fixed ``stats.answered``.
    """
    cap = config.abandon_cap
    x, n = stats.abandoned, stats.answered
    if cap <= 0:
        return None
    if config.hard_fraction is not None and x > 0 and x >= cap * config.hard_fraction * n:
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


def _risk_curve(state: PacingState, ready: int, waiting: int) -> Callable[[int], float] | None:
    return abandon_risk(
        state.estimates,
        ready,
        waiting,
        state.dialing,
        state.talking,
        state.wrapping,
        value_scale=state.config.value_seconds,
        odds=state.dialing_odds,
    )


def _predictive(state: PacingState, risk: float, room: int, ready: int, waiting: int) -> int:
    theta = _risk_curve(state, ready, waiting)
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
    theta = _risk_curve(state, max(0, state.ready_agents), max(0, state.waiting_calls))
    return 0.0 if theta is None else theta(n)
