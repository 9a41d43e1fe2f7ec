"""From live agents and lines to the core pacer's input (F-D4).

:func:`pacing_state` turns what the dialer sees (its campaign's agents from the
distributor, its own lines ringing and answered-but-waiting, inbound customer callbacks
waiting for the campaign, the day's abandon counts) into a
:class:`~asterisk_cube.core.pacing.PacingState`; :func:`asterisk_cube.core.pacing.decide`
says how many lines to dial. :class:`Learning` keeps the campaign's learned ring and talk
times and rebuilds the estimates now and then (the build is the costly part);
:func:`learned_from_history` gives a restarted dialer what its campaigns' recent calls
taught (``records.learning_history`` reads them), so it does not start from the prior.

Who counts as what for the pacer:

- *ready*: state ready, not on an outbound call, with a phone;
- *talking* (elapsed seconds): busy, or offered an inbound call (about to be busy);
- *wrapping* (seconds left): in wrap-up;
- left out: paused, logged out, and anyone who asked to pause after the current call or
  wrap-up (F-D5: the pacer stops dialing for a pausing agent).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.agents import AgentState
from asterisk_cube.core.answer_odds import AnswerOdds, Stratum, observe_odds
from asterisk_cube.db import models as m

from .campaigns import CampaignConfig


def free_agent(agent: DialerAgent) -> bool:
    """May the dialer connect a call to this agent right now?"""
    return agent.state is AgentState.READY and not agent.on_outbound_call and bool(agent.endpoint)


def pacing_config(campaign: CampaignConfig) -> pc.PacingConfig:
    mode = pc.PacingMode.POWER if campaign.mode == "power" else pc.PacingMode.PREDICTIVE
    return pc.PacingConfig(
        mode=mode,
        abandon_cap=campaign.abandon_cap,
        max_ratio=max(1.0, campaign.max_dial_ratio),
    )


def pacing_state(
    agents: Iterable[DialerAgent],
    now: dt.datetime,
    *,
    estimates: pc.PacingEstimates,
    config: pc.PacingConfig,
    ringing: Sequence[float] = (),
    ringing_odds: Sequence[float] = (),
    waiting: int = 0,
    abandon: pc.AbandonStats | None = None,
) -> pc.PacingState:
    """The pacer's view. ``ringing``: seconds since each of the campaign's ringing lines was
    dialed, ``ringing_odds`` (same order, or empty) their contacts' answer odds relative to
    the campaign's; ``waiting``: answered contacts (and inbound customer callbacks of the
    campaign) waiting for an agent."""
    ready = 0
    talking: list[float] = []
    wrapping: list[float] = []
    paused = 0
    for a in agents:
        if a.state is AgentState.PAUSED or a.pause_requested:
            paused += 1
        elif a.state is AgentState.READY:
            if free_agent(a):
                ready += 1
            elif a.on_outbound_call:
                talking.append(_seconds(now, a.since))
        elif a.state in (AgentState.BUSY, AgentState.OFFERED):
            talking.append(_seconds(now, a.since))
        elif a.state is AgentState.WRAP_UP:
            left = (a.wrap_up_until - now).total_seconds() if a.wrap_up_until else 0.0
            wrapping.append(max(0.0, left))
    return pc.PacingState(
        estimates=estimates,
        config=config,
        ready_agents=ready,
        talking=tuple(talking),
        wrapping=tuple(wrapping),
        paused_agents=paused,
        dialing=tuple(ringing),
        dialing_odds=tuple(ringing_odds),
        waiting_calls=waiting,
        abandon=abandon or pc.AbandonStats(),
    )


def _seconds(now: dt.datetime, since: dt.datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


#: Pace each ringing line on its contact's own answer odds (how its last attempt ended,
#: which attempt, its list: core.answer_odds) instead of one shared rate. On a list where
#: every contact looks alike every multiplier is 1.0 and nothing changes; measured in
#: docs/benchmarks.md, "Issue 18, run 7".
PER_CONTACT_ODDS = True


@dataclass
class Learning:
    """A campaign's learned dial and talk behaviour, and estimates rebuilt from it every
    ``rebuild_events`` observations or ``rebuild_seconds``, whichever comes first."""

    prior: pc.Prior
    wrap_up_seconds: float
    #: how long an answered call may wait for an agent to free up (pc.connect_window)
    grace_seconds: float = pc.CONNECT_WINDOW
    rebuild_events: int = 20
    rebuild_seconds: float = 5.0
    dials: pc.DialLearner = field(default_factory=pc.DialLearner)
    talk: pc.TalkLearner = field(default_factory=pc.TalkLearner)
    #: pace each ringing line on its contact's own answer odds (core.answer_odds)
    per_contact_odds: bool = PER_CONTACT_ODDS
    odds: AnswerOdds = field(default_factory=AnswerOdds)
    _estimates: pc.PacingEstimates | None = None
    _built_at: float = 0.0
    _events: int = 0
    #: odds multipliers per stratum, cleared with every rebuild (looked up per line)
    _multipliers: dict[Stratum, float] = field(default_factory=dict)

    def observe_dial(self, ring_seconds: float, person: bool, key: Stratum | None = None) -> None:
        self.dials = pc.observe_dial(self.dials, ring_seconds, person)
        if key is not None:
            self.odds = observe_odds(self.odds, key, person)
        self._events += 1

    def odds_multiplier(self, key: Stratum) -> float:
        """``key``'s answer odds relative to the campaign's, as of the last rebuild."""
        mult = self._multipliers.get(key)
        if mult is None:
            mult = self._multipliers[key] = self.odds.multiplier(key)
        return mult

    def observe_talk(self, seconds: float) -> None:
        self.talk = pc.observe_talk(self.talk, seconds)
        self._events += 1

    def estimates(
        self, in_call: tuple[float, ...] = (), now: float | None = None
    ) -> pc.PacingEstimates:
        now = time.monotonic() if now is None else now
        stale = (
            self._estimates is None
            or self._events >= self.rebuild_events
            or now - self._built_at >= self.rebuild_seconds
        )
        if stale:
            self._estimates = pc.build_estimates(
                self.dials,
                self.talk,
                self.prior,
                wrapup_seconds=self.wrap_up_seconds,
                grace_seconds=self.grace_seconds,
                in_call=in_call,
            )
            self._built_at = now
            self._events = 0
            self._multipliers = {}
        assert self._estimates is not None
        return self._estimates


#: Calls whose timings say nothing about the campaign's contacts: ended by a restart or an
#: error, or cut short by our side before the dial could end (never observed live either).
UNLEARNED_REASONS = frozenset({"lost_during_restart", "error", "agent_hangup_ringing"})
#: Answered by a person (as the live dialer judges it: an AMD machine is not; a machine the
#: agent reported afterwards took an agent, so it is).
PERSON_STATES = frozenset({m.CallState.CONNECTED, m.CallState.ENDED, m.CallState.ABANDONED})


@dataclass(frozen=True, slots=True)
class HistoryCall:
    """One finished dialer call of a campaign as the database keeps it."""

    dialed_at: dt.datetime  # the contact leg started
    answered_at: dt.datetime | None  # the contact answered
    connected_at: dt.datetime | None  # bridged with an agent
    ended_at: dt.datetime
    state: m.CallState
    end_reason: str = ""


def history_observations(
    calls: Iterable[HistoryCall],
) -> tuple[list[tuple[float, bool]], list[float]]:
    """What the live dialer would have observed of these calls (oldest first): per dial
    (ring seconds, answered by a person), and the talk time of each call with an agent."""
    dials: list[tuple[float, bool]] = []
    talks: list[float] = []
    for call in calls:
        if call.end_reason in UNLEARNED_REASONS:
            continue
        person = call.state in PERSON_STATES
        stop = call.answered_at if call.answered_at is not None else call.ended_at
        dials.append((max(0.0, (stop - call.dialed_at).total_seconds()), person))
        if call.state == m.CallState.ENDED and call.connected_at is not None:
            talks.append(max(0.0, (call.ended_at - call.connected_at).total_seconds()))
    return dials, talks


def learned_from_history(calls: Iterable[HistoryCall]) -> tuple[pc.DialLearner, pc.TalkLearner]:
    """The campaign's learners from its past calls (oldest first)."""
    dials, talks = history_observations(calls)
    return pc.learn_history(dials, talks)
