"""Peer baselines for the dialer benchmark (not product code).

VICIdial's adaptive predictive dial level, as AST_VDadapt.pl computes it every
~15 s: ``level x (1 + (ready agents - waiting calls) / agents)`` over the last
minute's averages, clamped to [1, max level]; with ADAPT_HARD_LIMIT, once the
day's drop rate passes the cap (after 50 calls) the level drops to 1.0. The
dial level is applied as VICIdial's AST_VDauto_dial.pl does: goal = level x
active agents (ready + in call), new dials = goal - calls in progress.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from asterisk_cube.core.pacing import PacingState


def vicidial_dial_level(
    level: float,
    ready_avg: float,
    waiting_avg: float,
    agents_avg: float,
    drops_today: int,
    answered_today: int,
    cap: float = 0.03,
    max_level: float = 3.0,
    min_calls: int = 50,
) -> float:
    """The next dial level (pure)."""
    if agents_avg > 0:
        level = level * (1.0 + (ready_avg - waiting_avg) / agents_avg)
    level = min(max_level, max(1.0, level))
    if answered_today > min_calls and drops_today / answered_today > cap:
        level = 1.0
    return level


@dataclass
class VicidialAdaptive:
    """Keeps the last minute of (ready, waiting, agents) samples and the level."""

    cap: float = 0.03
    max_level: float = 3.0
    level: float = 1.0
    samples: deque = field(default_factory=lambda: deque(maxlen=4))

    def sample(self, ready: int, waiting: int, agents: int) -> VicidialAdaptive:
        self.samples.append((ready, waiting, agents))
        return self

    def adjust(self, drops: int, answered: int) -> VicidialAdaptive:
        n = len(self.samples)
        if n:
            ready = sum(s[0] for s in self.samples) / n
            waiting = sum(s[1] for s in self.samples) / n
            agents = sum(s[2] for s in self.samples) / n
            self.level = vicidial_dial_level(
                self.level, ready, waiting, agents, drops, answered, self.cap, self.max_level
            )
        return self


def trivial_baseline(state: PacingState) -> int:
    """The cheapest sensible pacer (progressive 1:1), timed beside the real one."""
    return max(0, state.ready_agents - len(state.dialing) - state.waiting_calls)
