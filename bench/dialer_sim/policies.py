"""The policies a simulated campaign can be paced by: the product and its baselines."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from asterisk_cube.core import pacing
from bench.baselines import VicidialAdaptive

from .model import CAP, WRAPUP

#: as the live dialer ships (asterisk_cube.dialer.pacer.PER_CONTACT_ODDS; not imported: the
#: simulator stays on the core)
SHIPPED_ODDS = True

if TYPE_CHECKING:
    from .sim import Sim


class Policy:
    """A policy sees the simulator and returns how many lines to dial now."""

    name = "policy"
    uses_learning = False

    def decide(self, sim: Sim) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class CorePolicy(Policy):
    """The product: asterisk_cube.core.pacing.decide with a new campaign's settings,
    estimates learned online."""

    uses_learning = True

    def __init__(
        self,
        mode: pacing.PacingMode,
        config: pacing.PacingConfig | None = None,
        prior: pacing.Prior | None = None,
        odds: bool = False,
    ):
        self.name = mode.value
        #: pace each ringing line on its contact's own odds (core.answer_odds)
        self.use_odds = odds
        self.mult: dict = {}
        self.config = config or pacing.PacingConfig(
            mode=mode, abandon_cap=CAP, max_ratio=pacing.DEFAULT_MAX_DIAL_RATIO
        )
        self.prior = prior or pacing.Prior()
        self.estimates = pacing.build_estimates(prior=self.prior, wrapup_seconds=WRAPUP)

    def state(self, sim: Sim) -> pacing.PacingState:
        now = sim.now
        leaving = sim.leaving
        return pacing.PacingState(
            estimates=self.estimates,
            config=self.config,
            ready_agents=len(sim.ready),
            talking=tuple(now - sim.talk_start[a] for a in sim.talking if a not in leaving),
            wrapping=tuple(sim.wrap_end[a] - now for a in sim.wrapping if a not in leaving),
            paused_agents=len(leaving),
            dialing=tuple(now - t for t in sim.lines.values()),
            dialing_odds=self._odds(sim),
            waiting_calls=len(sim.waiting),
            abandon=pacing.AbandonStats(sim.result.abandoned, sim.result.answered),
        )

    def _odds(self, sim: Sim) -> tuple[float, ...]:
        if not self.use_odds:
            return ()
        mult, keys = self.mult, sim.line_key
        return tuple(mult.get(keys[lid], 1.0) for lid in sim.lines)

    def decide(self, sim: Sim) -> int:
        return pacing.decide(self.state(sim)).dials

    def relearn(self, sim: Sim) -> None:
        now = sim.now
        if self.use_odds:
            self.mult = sim.odds.multipliers(sim.odds.counts)
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
        talking = len(sim.talking)
        active = len(sim.ready) + talking - sim.talking_leaving()
        goal = math.floor(self.level * active + 0.5)
        return goal - len(sim.lines) - len(sim.waiting) - talking


class VicidialPolicy(Policy):
    """VICIdial ADAPT_HARD_LIMIT (bench.baselines.VicidialAdaptive) driving DialLevel."""

    name = "vicidial adapt"

    def __init__(self):
        self.adapt = VicidialAdaptive(cap=CAP)
        self.next_adapt = 15.0

    def decide(self, sim: Sim) -> int:
        if sim.now >= self.next_adapt:
            self.adapt = self.adapt.sample(len(sim.ready), len(sim.waiting), sim.logged_in)
            self.adapt = self.adapt.adjust(sim.result.abandoned, sim.result.answered)
            self.next_adapt += 15.0
        talking = len(sim.talking)
        active = len(sim.ready) + talking - sim.talking_leaving()
        goal = math.floor(self.adapt.level * active + 0.5)
        return goal - len(sim.lines) - len(sim.waiting) - talking


def make_policy(spec: str) -> Policy:
    if spec in ("predictive", "odds"):
        # the shipped predictive pacer: per-contact odds on (dialer.pacer.PER_CONTACT_ODDS)
        return CorePolicy(pacing.PacingMode.PREDICTIVE, odds=SHIPPED_ODDS)
    if spec == "shared":
        # run 6's pacer: every ringing line at the campaign's one answer rate
        return CorePolicy(pacing.PacingMode.PREDICTIVE)
    if spec == "power":
        return CorePolicy(pacing.PacingMode.POWER)
    if spec == "vicidial":
        return VicidialPolicy()
    kind, _, value = spec.partition(":")
    if kind == "predictive":
        # predictive:{"value_seconds": 20}: a variant (PacingConfig fields over the defaults)
        overrides = json.loads(value)
        config = pacing.PacingConfig(
            mode=pacing.PacingMode.PREDICTIVE,
            abandon_cap=CAP,
            max_ratio=pacing.DEFAULT_MAX_DIAL_RATIO,
            **overrides,
        )
        return CorePolicy(pacing.PacingMode.PREDICTIVE, config, odds=SHIPPED_ODDS)
    if kind == "ratio":
        return ReadyRatio(float(value))
    if kind == "level":
        return DialLevel(float(value))
    raise ValueError(spec)
