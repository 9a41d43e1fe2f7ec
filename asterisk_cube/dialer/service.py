"""The dialer: one pacing loop for every running outbound campaign (F-D1..F-D5, F-E4..F-E6,
F-I5, F-I8).

Every ``tick`` (and whenever an agent's state changes) :meth:`Dialer.step` looks at each
running campaign:

1. answered contacts waiting for an agent get the longest-idle free agent of the
   campaign (power/predictive);
2. due scheduled callbacks go to a free agent, reserved ones to their agent, *preview
   style* in every mode: the agent's phone rings first and shows the callback's comment,
   then the contact is dialed (seed 001);
3. preview campaigns: each free agent is offered a contact (a contact whose agent did
   not answer is offered to the next free agent first); power/predictive:
   :func:`asterisk_cube.core.pacing.decide` says how many lines to dial for the campaign's
   agents, and that many contacts are claimed and dialed;
4. while lines ring for a power/predictive campaign, its ready agents are marked
   "dialer dialing" (inbound is blocked for them, F-I5).

Contacts are claimed in the database (:mod:`.claims`), so calling windows, attempt limits,
retry intervals and "never twice at once" hold across processes.

Each line runs as a task (``_pool_line`` / ``_preview_line``). An answered contact must
reach an agent within ``connect_budget`` seconds (2 s, F-D4; setting ``abandon_seconds``):
the agent's phone is rung with auto-answer inside that budget; if no agent is free, or its
phone does not answer in time, the contact hears ``abandon_media``, is hung up and the
attempt is logged ``abandoned`` (a retry outcome: it is dialed again if attempts remain).
The abandon rate (abandoned / answered by a person, this local day) feeds the pacer, which
keeps it under the campaign's cap.

Agent states change only through the distributor's dialer hooks (``outbound_started``,
``outbound_connected``, ``outbound_ended``, ``set_dialer_dialing``); agents are shared
out between running campaigns in campaign id order (an agent dials for the first running
campaign whose skill it holds). Blending (F-I8): inbound customer callbacks to a campaign
stay in the inbound queue; for a power/predictive campaign they count as calls waiting
for its agents, so the pacer leaves room and the next agent to come free takes them
(the distributor offers the waiting call the moment an agent is ready, before the
dialer blocks it again); for a preview campaign they are ordinary inbound calls.

The timings are the ``[dialer]`` settings (:func:`dialer_options`). A campaign's learned ring
and talk times start from its recent calls in the database, not from the prior.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.distributor import DialerAgent, Distributor, EnquiryRegistered
from asterisk_cube.config import DialerSettings
from asterisk_cube.core import contacts as core
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.agents import AgentState
from asterisk_cube.core.contacts import Outcome, PickKind
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger

from . import records
from .campaigns import CampaignConfig, outbound_campaigns, rules_of
from .claims import Claim, any_callback_due, claim_contacts, release_claim
from .pacer import Learning, free_agent, learned_from_history, pacing_config, pacing_state

log = get_logger(__name__)

#: Q.850 causes: busy, congestion and the like are failures; 1/28 mean an unusable number.
BUSY_CAUSES = frozenset({17})
INVALID_CAUSES = frozenset({1, 28})
FAILED_CAUSES = frozenset({17, 21, 27, 31, 34, 38, 41, 42, 44, 47, 58, 88})
POOL_KINDS = frozenset({PickKind.FRESH, PickKind.RETRY})
#: The panel's pace: dials per minute over this many seconds.
PACE_WINDOW = 60.0


def dialer_options(settings: DialerSettings) -> dict[str, Any]:
    """``Dialer`` keyword arguments from the ``[dialer]`` settings."""
    return {
        "tick": settings.step_interval,
        "reload_every": settings.reload_interval,
        "stats_every": settings.stats_interval,
        "ring_timeout": settings.ring_timeout,
        "agent_ring_timeout": settings.agent_ring_timeout,
        "connect_budget": settings.abandon_seconds,
        "abandon_media": settings.abandon_message,
        "abandon_timeout": settings.abandon_message_timeout,
        "min_agent_time": settings.min_agent_time,
        "fair_answer_time": settings.fair_answer_time,
        "history_days": settings.history_days,
    }


class DialerTelephony(Protocol):
    """What the dialer needs from Asterisk (``ari.outbound.OutboundApp``)."""

    def new_channel_id(self, agent: bool = False) -> str: ...

    def endpoint_for(self, number: str) -> str: ...

    def gone(self, channel_id: str) -> asyncio.Future[None]: ...

    def forget(self, channel_id: str) -> None: ...

    async def dial_contact(
        self,
        call_id: int,
        channel_id: str,
        number: str,
        *,
        caller_id: str | None,
        timeout: float,
        amd: bool = False,
    ) -> Any: ...

    async def ring_agent(
        self,
        call_id: int,
        channel_id: str,
        endpoint: str,
        *,
        auto_answer: bool,
        timeout: float,
        caller_id: str = "",
    ) -> bool: ...

    async def bridge(self, call_id: int, channels: list[str]) -> None: ...

    async def end_call(self, call_id: int) -> None: ...

    async def play(self, channel_id: str, media: str, timeout: float = 15.0) -> bool: ...

    async def start_tone(self, channel_id: str, tone: str = "tone:ring") -> str | None: ...

    async def stop_playback(self, playback_id: str | None) -> None: ...

    async def hangup(self, channel_id: str | None) -> None: ...


@dataclass
class Line:
    """One dialer call in flight."""

    call_id: int
    run: CampaignRun
    claim: Claim
    mode: str
    phase: str = "new"  # new | agent | ringing | waiting | connecting | talking | ending
    dialed_at: float | None = None  # monotonic
    answered_at: float | None = None
    contact_channel: str | None = None
    agent_id: int | None = None
    agent_channel: str | None = None
    waiter: asyncio.Future[DialerAgent] | None = None
    declined: set[int] = field(default_factory=set)  # preview: agents that did not answer
    answered_wall: dt.datetime | None = None
    abandoned: bool = False
    feedback: tuple[Outcome, core.Callback | None, int | None] | None = None
    task: asyncio.Task | None = None


@dataclass
class CampaignRun:
    """A campaign the dialer works for, with what it learned and its lines."""

    config: CampaignConfig
    learning: Learning
    lines: dict[int, Line] = field(default_factory=dict)
    waiting: deque[Line] = field(default_factory=deque)  # answered, no agent yet
    pending_preview: deque[Line] = field(default_factory=deque)  # agent did not answer
    abandoned: int = 0  # today, finished attempts (from the database)
    answered: int = 0
    stats_at: float = -1e9
    stats_day: dt.date | None = None
    empty_until: dict[str, float] = field(default_factory=dict)  # claim kind -> monotonic
    decision: pc.PacingDecision | None = None
    hopper_empty: bool = False  # nothing left to dial now (VICIdial users' top complaint)
    agents: int = 0  # working for the campaign at the last step (logged in, not paused)
    ready: int = 0  # of them free for a call
    dialed: deque[float] = field(default_factory=deque)  # monotonic, last PACE_WINDOW s
    monotonic: Callable[[], float] = time.monotonic  # the dialer's clock

    def count_dial(self) -> None:
        now = self.monotonic()
        self.dialed.append(now)
        while self.dialed and self.dialed[0] < now - PACE_WINDOW:
            self.dialed.popleft()

    @property
    def dials_per_minute(self) -> float:
        cutoff = self.monotonic() - PACE_WINDOW
        return sum(1 for t in self.dialed if t >= cutoff) * 60.0 / PACE_WINDOW

    @property
    def ringing_ages(self) -> tuple[float, ...]:
        now = self.monotonic()
        return tuple(
            now - ln.dialed_at
            for ln in self.lines.values()
            if ln.phase == "ringing" and ln.dialed_at is not None and ln.mode != "preview"
        )

    def abandon_stats(self) -> pc.AbandonStats:
        """Today's finished attempts plus the lines in flight (an abandon counts from the
        moment it is decided, while its message still plays)."""
        answered = sum(1 for ln in self.lines.values() if ln.answered_at is not None)
        abandoned = sum(1 for ln in self.lines.values() if ln.abandoned)
        return pc.AbandonStats(self.abandoned + abandoned, self.answered + answered, "day")


class Dialer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        distributor: Distributor,
        hub: EventHub | None = None,
        telephony: DialerTelephony | None = None,
        *,
        node: str = "local",
        clock: Callable[[], dt.datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        tick: float = 0.1,
        coalesce: float = 0.03,
        ring_timeout: float = 25.0,
        agent_ring_timeout: float = 20.0,
        connect_budget: float = 2.0,
        min_agent_time: float = pc.MIN_AGENT_SECONDS,
        fair_answer_time: float = 1.0,
        bridge_margin: float = pc.BRIDGE_MARGIN_SECONDS,
        abandon_media: str = "sound:asterisk-cube/formal/sorry",
        abandon_timeout: float = 15.0,
        reload_every: float = 2.0,
        stats_every: float = 2.0,
        history_days: int = 30,
        prior: pc.Prior | None = None,
    ) -> None:
        self.sessions = sessions
        self.distributor = distributor
        self.hub = hub
        self.telephony = telephony
        self.node = node
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        # every duration, deadline and budget is measured on this clock (tests inject the
        # event loop's, which they can fast-forward: timing logic independent of load)
        self.monotonic = monotonic
        self.tick = tick
        self.coalesce = min(coalesce, tick)  # least time between two steps
        self.ring_timeout = ring_timeout
        self.agent_ring_timeout = agent_ring_timeout
        self.connect_budget = connect_budget
        self.min_agent_time = min_agent_time  # don't ring an agent with less budget left
        self.fair_answer_time = fair_answer_time  # auto-answer slower than this: pause it
        self.bridge_margin = bridge_margin
        #: how long an answered call may wait for an agent to free up: the pacer plans with
        #: the same number (pc.connect_window)
        self.connect_window = pc.connect_window(connect_budget, min_agent_time, bridge_margin)
        self.abandon_media = abandon_media
        self.abandon_timeout = abandon_timeout  # the message may play this long at most
        self.reload_every = reload_every
        self.stats_every = stats_every
        self.history_days = history_days  # learned ring/talk times start from these days
        self.prior = prior
        self.runs: dict[int, CampaignRun] = {}
        self.lines: dict[int, Line] = {}
        self.connect_delays: list[float] = []  # answered -> bridged with an agent (s)
        self.agent_answer_delays: list[float] = []  # agent rung -> answered (auto-answer)
        self.step_seconds: deque[float] = deque(maxlen=10000)  # how long each step took
        self.abandon_waits: list[float] = []  # answered -> abandon decided (s)
        self._flagged: set[int] = set()
        self._loaded_at = -1e9
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._recovered = False
        distributor.add_enquiry_listener(self.on_enquiry)

    # ------------------------------------------------------------ plumbing

    def now(self) -> dt.datetime:
        return self._clock()

    def _tx(self):
        return transaction(self.sessions)

    def wake(self) -> None:
        self._wake.set()

    def refresh(self) -> None:
        """Reload the campaigns at the next step (e.g. after a start/stop from the desk)."""
        self._loaded_at = -1e9
        self._wake.set()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("dialer_task_failed", task=task.get_name(), error=repr(task.exception()))

    # ----------------------------------------------------------------- loop

    async def run(self) -> None:
        """The runtime component: step every ``tick`` or when an agent changes."""
        self.recover()
        sub = self.hub.subscribe(c.AgentViewChanged, name="dialer") if self.hub else None
        waker = None
        if sub is not None:
            waker = asyncio.create_task(self._follow(sub), name="dialer-wake")
        log.info("dialer_start", node=self.node)
        try:
            while True:
                self._wake.clear()
                began = self.monotonic()
                try:
                    self.step()
                except Exception:
                    log.exception("dialer_step_failed")
                self.step_seconds.append(self.monotonic() - began)
                if self.coalesce > 0:  # the wake-ups of a burst (every agent change wakes
                    # us) collapse into one step instead of one step each
                    await asyncio.sleep(self.coalesce)
                waiter = asyncio.ensure_future(self._wake.wait())
                try:  # not wait_for: on 3.11 it can swallow our cancellation
                    await asyncio.wait({waiter}, timeout=max(0.0, self.tick - self.coalesce))
                finally:
                    waiter.cancel()
        finally:
            if waker is not None:
                waker.cancel()
            if sub is not None:
                sub.close()
            await self.close()

    async def _follow(self, sub) -> None:
        async for _event in sub:
            self._wake.set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            self._release_pending(list(self.runs.values()))
        for agent_id in list(self._flagged):
            with contextlib.suppress(Exception):
                self.distributor.set_dialer_dialing(agent_id, False)
        self._flagged.clear()

    def recover(self) -> dict[str, int]:
        """Once at start: what a previous run of this node left in the database."""
        if self._recovered:
            return {}
        self._recovered = True
        with self._tx() as s:
            configs = {c_.campaign_id: c_ for c_ in outbound_campaigns(s, running_only=False)}
            stats = records.recover(
                s,
                self.node,
                self.now(),
                lambda cid: configs[cid].rules if cid in configs else None,
                keep_calls=self.lines.keys(),
            )
        if any(stats.values()):
            log.info("dialer_recovered", **stats)
        return stats

    # ----------------------------------------------------------------- step

    def step(self) -> None:
        """One round over every campaign (synchronous: DB claims, hooks, task spawns)."""
        mono = self.monotonic()
        if mono - self._loaded_at >= self.reload_every:
            self._reload()
            self._loaded_at = mono
        if self.telephony is None or not getattr(self.telephony, "connected", True):
            return
        now = self.now()
        everyone = self.distributor.dialer_pool()
        logged_in = frozenset(a.agent_id for a in everyone)
        taken: set[int] = set()
        want_flag: set[int] = set()
        for run in sorted(self.runs.values(), key=lambda r: r.config.campaign_id):
            pool = [
                a for a in self.distributor.dialer_pool(run.config.skill) if a.agent_id not in taken
            ]
            taken.update(a.agent_id for a in pool)
            want_flag |= self._step_campaign(run, pool, now, logged_in)
        self._set_flags(want_flag)

    def _reload(self) -> None:
        with self._tx() as s:
            running = {c_.campaign_id: c_ for c_ in outbound_campaigns(s)}
        for cid, config in running.items():
            run = self.runs.get(cid)
            if run is None:
                prior = self.prior or pc.Prior(dial_timeout=self.ring_timeout)
                learning = Learning(
                    prior,
                    wrap_up_seconds=config.wrap_up_seconds,
                    grace_seconds=self.connect_window,
                )
                self._learn_history(config, learning)
                self.runs[cid] = CampaignRun(config, learning, monotonic=self.monotonic)
                log.info("dialer_campaign_started", campaign=config.name, mode=config.mode)
            elif run.config != config:
                run.config = config
                run.learning.wrap_up_seconds = config.wrap_up_seconds
        for cid, run in list(self.runs.items()):
            if cid in running:
                continue
            if run.config.running:
                log.info("dialer_campaign_stopped", campaign=run.config.name)
                run.config = _stopped(run.config)
                self._release_pending([run])
            if not run.lines:
                del self.runs[cid]

    def _learn_history(self, config: CampaignConfig, learning: Learning) -> None:
        """A campaign (re)starting in this process learns from its recent calls."""
        if self.history_days <= 0:
            return
        since = self.now() - dt.timedelta(days=self.history_days)
        try:
            with self._tx() as s:
                calls = records.learning_history(
                    s, config.campaign_id, since, int(learning.dials.max_weight)
                )
            learning.dials, learning.talk = learned_from_history(calls)
        except Exception:  # the prior is a fine start: never keep a campaign from dialing
            log.exception("dialer_history_failed", campaign=config.name)
            return
        if calls:
            log.info(
                "dialer_history_learned",
                campaign=config.name,
                dials=round(learning.dials.dials),
                answer_rate=round(learning.dials.answer_rate, 3),
                talks=round(learning.talk.calls),
            )

    def _step_campaign(
        self,
        run: CampaignRun,
        pool: list[DialerAgent],
        now: dt.datetime,
        logged_in: frozenset[int],
    ) -> set[int]:
        cfg = run.config
        free = sorted(
            (a for a in pool if free_agent(a)),
            key=lambda a: (a.idle_since or a.since or now, a.agent_id),
        )
        run.agents = sum(1 for a in pool if a.state is not AgentState.PAUSED)
        run.ready = len(free)
        self._serve_waiting(run, free)  # takes the agents it uses out of ``free``
        if not cfg.running:
            return set()
        self._refresh_stats(run, now)
        # scheduled callbacks first, preview style, in every mode
        if free and not self._empty(run, "callback"):
            delivered = 0
            for agent in list(free) if self._callback_due(run, now) else ():
                claims = self._claim(
                    run,
                    now,
                    1,
                    mode=m.DialMode.PREVIEW.value,
                    for_agent=agent.agent_id,
                    logged_in=logged_in,
                    kinds={PickKind.CALLBACK},
                    key=None,
                )
                if claims and self._start_preview(run, *claims[0], agent, now):
                    free.remove(agent)
                    delivered += 1
            if not delivered:  # none due, or reserved for agents who are not free
                run.empty_until["callback"] = self.monotonic() + 1.0
        # contacts (preview, or callbacks in any mode) an agent let ring: to the next free
        # agent who has not, never back to one who has
        for agent in list(free):
            line = next(
                (ln for ln in run.pending_preview if agent.agent_id not in ln.declined), None
            )
            if line is not None:
                run.pending_preview.remove(line)
                if self._offer_preview(line, agent):
                    free.remove(agent)
                else:
                    run.pending_preview.appendleft(line)
        self._requeue_declined(run, pool, free)
        if cfg.mode == m.DialMode.PREVIEW.value:
            for agent in list(free):
                if self._empty(run, "preview"):
                    continue
                claims = self._claim(
                    run,
                    now,
                    1,
                    mode=m.DialMode.PREVIEW.value,
                    for_agent=agent.agent_id,
                    logged_in=logged_in,
                    key="preview",
                )
                if claims and self._start_preview(run, *claims[0], agent, now):
                    free.remove(agent)
            return set()
        # power / predictive: the pacer sees the agents as they are after this round
        mine = {a.agent_id for a in pool}
        pool = [a for a in self.distributor.dialer_pool(cfg.skill) if a.agent_id in mine]
        free = [a for a in free if any(p.agent_id == a.agent_id and free_agent(p) for p in pool)]
        waiting = len(run.waiting) + self.distributor.waiting_for_campaign(cfg.campaign_id)
        in_call = tuple(
            self.monotonic() - ln.answered_at
            for ln in run.lines.values()
            if ln.phase == "talking" and ln.answered_at is not None
        )
        state = pacing_state(
            pool,
            now,
            estimates=run.learning.estimates(in_call, now=self.monotonic()),
            config=pacing_config(cfg),
            ringing=run.ringing_ages,
            waiting=waiting,
            abandon=run.abandon_stats(),
        )
        decision = pc.decide(state)
        if decision != run.decision:
            log.debug(
                "dialer_pace",
                campaign=cfg.name,
                dials=decision.dials,
                reason=decision.reason,
                ready=state.ready_agents,
                talking=len(state.talking),
                wrapping=len(state.wrapping),
                ringing=len(state.dialing),
                waiting=state.waiting_calls,
                abandoned=state.abandon.abandoned,
                answered=state.abandon.answered,
            )
        run.decision = decision
        if decision.dials > 0 and not self._empty(run, "pool"):
            claims = self._claim(
                run,
                now,
                decision.dials,
                mode=cfg.mode,
                logged_in=logged_in,
                kinds=POOL_KINDS,
                key="pool",
            )
            for claim, call_id in claims:
                self._start_pool_line(run, claim, call_id)
        if not (run.ringing_ages or run.waiting):
            return set()
        # F-I5: inbound is blocked for the agents the lines ring for; F-I8: as many of the
        # longest-idle agents as customer callbacks wait stay open for them
        callbacks = self.distributor.waiting_for_campaign(cfg.campaign_id)
        return {a.agent_id for a in free[callbacks:]}

    def _empty(self, run: CampaignRun, key: str) -> bool:
        return self.monotonic() < run.empty_until.get(key, 0.0)

    def _claim(
        self,
        run: CampaignRun,
        now: dt.datetime,
        limit: int,
        *,
        key: str | None,
        mode: str,
        for_agent: int | None = None,
        logged_in: frozenset[int] = frozenset(),
        kinds=frozenset(PickKind),
    ) -> list[tuple[Claim, int]]:
        """Claim contacts and open their call rows, in one transaction."""
        with self._tx() as s:
            found = claim_contacts(
                s,
                run.config,
                now,
                limit,
                node=self.node,
                for_agent=for_agent,
                logged_in=logged_in,
                kinds=kinds,
            )
            claims = [
                (
                    c_,
                    records.open_call(
                        s,
                        c_,
                        mode,
                        self.node,
                        now,
                        run.config.caller_id,
                        call_id=self.distributor.ids.next(m.Call),
                    ),
                )
                for c_ in found
            ]
        if len(claims) < limit and key is not None:
            # nothing more due now: look again in a second (not on every tick)
            run.empty_until[key] = self.monotonic() + 1.0
            if key in ("pool", "preview") and not claims and not run.hopper_empty:
                run.hopper_empty = True  # shown in snapshot(); logged once
                log.info("dialer_nothing_to_dial", campaign=run.config.name)
        if claims and key in ("pool", "preview"):
            run.hopper_empty = False
        return claims

    def _callback_due(self, run: CampaignRun, now: dt.datetime) -> bool:
        """One cheap look before a callback claim per free agent (each its own statement,
        on the event loop: with ten free agents in a few campaigns that was most of a
        step)."""
        with self._tx() as s:
            return any_callback_due(s, run.config, now)

    def _refresh_stats(self, run: CampaignRun, now: dt.datetime) -> None:
        zone = ZoneInfo(run.config.timezone)
        today = now.astimezone(zone).date()
        if self.monotonic() - run.stats_at < self.stats_every and run.stats_day == today:
            return
        since = dt.datetime.combine(today, dt.time(0), zone)
        with self._tx() as s:
            run.abandoned, run.answered = records.abandon_counts(s, run.config.campaign_id, since)
        run.stats_at = self.monotonic()
        run.stats_day = today

    def _set_flags(self, wanted: set[int]) -> None:
        for agent_id in self._flagged - wanted:
            with contextlib.suppress(c.Refused):
                self.distributor.set_dialer_dialing(agent_id, False)
        for agent_id in wanted - self._flagged:
            with contextlib.suppress(c.Refused):
                self.distributor.set_dialer_dialing(agent_id, True)
        self._flagged = set(wanted)

    def _release_pending(self, runs: list[CampaignRun]) -> None:
        now = self.now()
        for run in runs:
            while run.pending_preview:
                line = run.pending_preview.popleft()
                with self._tx() as s:
                    release_claim(s, line.claim.contact_id, now)
                    records.call_finished(s, line.call_id, m.CallState.FAILED, "not_dialed", now)
                self._forget_line(line)

    def _requeue_declined(
        self, run: CampaignRun, pool: list[DialerAgent], free: list[DialerAgent]
    ) -> None:
        """A contact is never offered again to an agent who let it ring: it waits for one
        who has not (e.g. one logging in). When every logged-in agent of the campaign has
        let it ring and one of them is free again (where it used to be offered to that
        agent again), it goes back to the list, not dialed (the attempt does not count),
        for the campaign's retry interval."""
        everyone = {a.agent_id for a in pool}
        if not everyone or not free:
            return
        for line in [ln for ln in run.pending_preview if everyone <= ln.declined]:
            run.pending_preview.remove(line)
            now = self.now()
            with self._tx() as s:
                release_claim(
                    s, line.claim.contact_id, now, retry_at=now + run.config.rules.retry_interval
                )
                records.call_finished(s, line.call_id, m.CallState.FAILED, "no_agent_answered", now)
            log.info(
                "dialer_preview_released",
                call=line.call_id,
                contact=line.claim.contact_id,
                declined=sorted(line.declined),
            )
            self._forget_line(line)

    # -------------------------------------------------------- assignments

    def _serve_waiting(self, run: CampaignRun, free: list[DialerAgent]) -> None:
        """Answered contacts waiting for an agent get the longest-idle free ones."""
        while run.waiting and free:
            line = run.waiting[0]
            waited = self.monotonic() - (line.answered_at or 0.0)
            if line.waiter is None or line.waiter.done() or waited > self.connect_window:
                run.waiting.popleft()
                continue
            agent = free.pop(0)
            if self._take_agent(line, agent, connected=False):
                run.waiting.popleft()
                line.waiter.set_result(agent)

    def _take_agent(self, line: Line, agent: DialerAgent, *, connected: bool) -> bool:
        try:
            self.distributor.outbound_started(
                call_id=line.call_id,
                agent_id=agent.agent_id,
                campaign_id=line.run.config.campaign_id,
                contact_id=line.claim.contact_id,
                number=line.claim.phone,
                channel_id=line.contact_channel,
                mode=line.mode,
                connected=connected,
                comment=line.claim.comment,
            )
        except c.Refused as exc:
            log.info("dialer_agent_refused", call=line.call_id, agent=agent.agent_id, why=str(exc))
            return False
        line.agent_id = agent.agent_id
        self._flagged.discard(agent.agent_id)  # outbound_started cleared it
        return True

    def _new_line(self, run: CampaignRun, claim: Claim, call_id: int, mode: str) -> Line:
        line = Line(call_id, run, claim, mode)
        run.lines[call_id] = line
        self.lines[call_id] = line
        return line

    def _start_pool_line(self, run: CampaignRun, claim: Claim, call_id: int) -> None:
        line = self._new_line(run, claim, call_id, run.config.mode)
        line.phase = "ringing"
        line.dialed_at = self.monotonic()
        line.task = self._spawn(self._pool_line(line), f"dial-{line.call_id}")

    def _start_preview(
        self, run: CampaignRun, claim: Claim, call_id: int, agent: DialerAgent, now: dt.datetime
    ) -> bool:
        line = self._new_line(run, claim, call_id, m.DialMode.PREVIEW.value)
        if not self._offer_preview(line, agent):
            with self._tx() as s:
                release_claim(s, claim.contact_id, now)
                records.call_finished(s, line.call_id, m.CallState.FAILED, "not_dialed", now)
            self._forget_line(line)
            return False
        return True

    def _offer_preview(self, line: Line, agent: DialerAgent) -> bool:
        if not self._take_agent(line, agent, connected=False):
            return False
        line.phase = "agent"
        line.task = self._spawn(self._preview_line(line, agent), f"preview-{line.call_id}")
        return True

    def _forget_line(self, line: Line) -> None:
        line.run.lines.pop(line.call_id, None)
        self.lines.pop(line.call_id, None)
        for ch in (line.contact_channel, line.agent_channel):
            if ch and self.telephony is not None:
                self.telephony.forget(ch)
        if not line.run.config.running and not line.run.lines:
            self.runs.pop(line.run.config.campaign_id, None)

    # ------------------------------------------------------------ call flows

    async def _pool_line(self, line: Line) -> None:
        """Power/predictive: dial the contact; when it answers, connect a free agent within
        the budget or abandon."""
        tel = self.telephony
        run, cfg = line.run, line.run.config
        try:
            dialed = self.now()
            if not core.in_window(cfg.rules, dialed):  # it closed since the claim
                self._release_pending_line(line)
                return
            channel = tel.new_channel_id()
            line.contact_channel = channel
            with self._tx() as s:
                records.contact_dialed(
                    s, line.call_id, channel, tel.endpoint_for(line.claim.phone), dialed
                )
            run.count_dial()
            result = await tel.dial_contact(
                line.call_id,
                channel,
                line.claim.phone,
                caller_id=cfg.caller_id,
                timeout=self.ring_timeout,
                amd=cfg.amd,
            )
            if not result.answered:
                run.learning.observe_dial(result.ring_seconds, False)
                self._finish_unanswered(line, result)
                return
            if result.amd_status == "MACHINE":
                run.learning.observe_dial(result.ring_seconds, False)
                await tel.hangup(channel)
                self._finish(line, m.CallState.MACHINE, "machine", Outcome.MACHINE)
                return
            run.learning.observe_dial(result.ring_seconds, True)
            line.answered_at = self.monotonic()
            line.answered_wall = self.now()  # written once bridged: keep the 2 s path short
            await self._connect_answered(line)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dialer_line_failed", call=line.call_id)
            if line.call_id in self.lines:
                await tel.hangup(line.contact_channel)
                await tel.hangup(line.agent_channel)
                if line.agent_id is not None:
                    with contextlib.suppress(Exception):
                        self.distributor.outbound_ended(line.call_id)
                self._finish(line, m.CallState.FAILED, "error", Outcome.FAILED)

    async def _connect_answered(self, line: Line) -> None:
        tel = self.telephony
        run = line.run
        # the agent must have answered by then: bridging takes a few ms more
        deadline = line.answered_at + self.connect_budget - self.bridge_margin
        gone = tel.gone(line.contact_channel)
        line.phase = "waiting"
        line.waiter = asyncio.get_running_loop().create_future()
        run.waiting.append(line)
        self.step_waiting(run)
        await asyncio.wait(
            {line.waiter, gone},
            timeout=max(0.0, deadline - self.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if line in run.waiting:
            run.waiting.remove(line)
        if not line.waiter.done():
            line.waiter.cancel()
            if gone.done():
                self._finish(
                    line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED
                )
            else:
                await self._abandon(line, "no_agent")
            return
        agent: DialerAgent = line.waiter.result()
        line.phase = "connecting"
        agent_channel = tel.new_channel_id(agent=True)
        line.agent_channel = agent_channel
        rung = self.monotonic()
        ring = asyncio.ensure_future(
            tel.ring_agent(
                line.call_id,
                agent_channel,
                agent.endpoint,
                auto_answer=True,
                timeout=max(0.1, deadline - rung),
                caller_id=_caller(line),
            )
        )
        await asyncio.wait({ring, gone}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():  # the contact hung up before the agent was there
            ok = await ring if ring.done() else False
            if not ring.done():
                ring.cancel()
            await tel.hangup(agent_channel)
            self._agent_leg(line, agent, rung, ok)
            self.distributor.outbound_ended(line.call_id)
            self._finish(line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED)
            return
        ok = ring.result()
        if not ok:
            self._agent_leg(line, agent, rung, False)
            given = deadline - rung
            log.warning(
                "dialer_agent_no_auto_answer",
                call=line.call_id,
                agent=agent.agent_id,
                given=round(given, 3),
            )
            # a phone that had a fair chance and did not answer by itself is paused (it would
            # abandon the next contact too); one we gave too little time stays ready
            self.distributor.outbound_ended(
                line.call_id, agent_no_answer=given >= self.fair_answer_time
            )
            await self._abandon(line, "agent_no_answer")
            return
        self.agent_answer_delays.append(self.monotonic() - rung)
        await self._bridge_and_talk(line, agent, rung)

    def step_waiting(self, run: CampaignRun) -> None:
        """Serve answered contacts at once (not at the next tick)."""
        pool = self.distributor.dialer_pool(run.config.skill)
        others = self._agents_of_earlier_runs(run)
        free = sorted(
            (a for a in pool if free_agent(a) and a.agent_id not in others),
            key=lambda a: (a.idle_since or a.since or self.now(), a.agent_id),
        )
        self._serve_waiting(run, free)

    def _agents_of_earlier_runs(self, run: CampaignRun) -> set[int]:
        taken: set[int] = set()
        for other in sorted(self.runs.values(), key=lambda r: r.config.campaign_id):
            if other is run:
                break
            taken.update(a.agent_id for a in self.distributor.dialer_pool(other.config.skill))
        return taken

    def _agent_leg(
        self, line: Line, agent: DialerAgent, rung: float, ok: bool, s: Session | None = None
    ) -> None:
        now = self.now()
        started = now - dt.timedelta(seconds=self.monotonic() - rung)
        with contextlib.nullcontext(s) if s is not None else self._tx() as tx:
            records.agent_leg(
                tx,
                line.call_id,
                agent.agent_id,
                line.agent_channel or "",
                agent.endpoint or "",
                started,
                now if ok else None,
                None if ok else "no_answer",
                ended=None if ok else now,  # it rang until now: the ring time is kept
            )

    async def _bridge_and_talk(
        self, line: Line, agent: DialerAgent, rung: float | None = None
    ) -> None:
        """Bridge contact and agent, then wait for either to hang up. ``rung``: the agent
        leg still has to be written (power/predictive write it only now)."""
        tel = self.telephony
        try:
            await tel.bridge(line.call_id, [line.contact_channel, line.agent_channel])
        except Exception as exc:  # a leg hung up just now
            await self._not_bridged(line, agent, rung, exc)
            return
        if line.answered_at is not None:
            self.connect_delays.append(self.monotonic() - line.answered_at)
        with self._tx() as s:
            if rung is not None:
                records.contact_answered(s, line.call_id, line.answered_wall or self.now())
                self._agent_leg(line, agent, rung, True, s)
            records.call_connected(s, line.call_id, agent.agent_id, self.now())
        self.distributor.outbound_connected(line.call_id, line.contact_channel, line.agent_channel)
        line.phase = "talking"
        talk_started = self.monotonic()
        gone_contact = tel.gone(line.contact_channel)
        gone_agent = tel.gone(line.agent_channel)
        await asyncio.wait({gone_contact, gone_agent}, return_when=asyncio.FIRST_COMPLETED)
        reason = "contact_hangup" if gone_contact.done() else "agent_hangup"
        line.phase = "ending"
        await tel.hangup(line.agent_channel if gone_contact.done() else line.contact_channel)
        await tel.end_call(line.call_id)
        line.run.learning.observe_talk(self.monotonic() - talk_started)
        self.distributor.outbound_ended(line.call_id)
        self._finish(line, m.CallState.ENDED, reason, Outcome.FINAL)

    async def _not_bridged(
        self, line: Line, agent: DialerAgent, rung: float | None, exc: Exception
    ) -> None:
        tel = self.telephony
        gone = tel.gone(line.contact_channel)
        await asyncio.wait({gone}, timeout=0.5)  # its hang-up event may be on its way
        contact_gone = gone.done()
        log.info("dialer_bridge_failed", call=line.call_id, contact_gone=contact_gone, error=exc)
        if rung is not None:
            self._agent_leg(line, agent, rung, True)
        await tel.hangup(line.agent_channel)
        await tel.end_call(line.call_id)
        self.distributor.outbound_ended(line.call_id)
        if contact_gone or line.mode == m.DialMode.PREVIEW.value:
            self._finish(line, m.CallState.ABANDONED, "contact_hangup_waiting", Outcome.ABANDONED)
        else:
            await self._abandon(line, "agent_gone")

    async def _abandon(self, line: Line, why: str) -> None:
        """No agent within the budget: the message, hang up, logged as abandoned."""
        line.phase = "ending"
        line.abandoned = True  # counted by the pacer from now on, not when the message ends
        if line.answered_at is not None:
            self.abandon_waits.append(self.monotonic() - line.answered_at)
        log.info("dialer_abandon", call=line.call_id, campaign=line.run.config.name, why=why)
        played = await self.telephony.play(
            line.contact_channel, self.abandon_media, timeout=self.abandon_timeout
        )
        # a contact who hung up before the message ended (under load: while we were late to
        # decide) did not miss it because of us: told apart from a message that failed.
        # A hang-up during the message fails the playback just before the channel's
        # StasisEnd (same event queue): give that event a moment, as _not_bridged does.
        left = False
        if not played:
            gone = self.telephony.gone(line.contact_channel)
            await asyncio.wait({gone}, timeout=0.5)
            left = gone.done()
        await self.telephony.hangup(line.contact_channel)
        if played:
            reason = f"abandoned_{why}"
        else:
            reason = f"abandoned_{why}_contact_left" if left else f"abandoned_{why}_no_message"
        self._finish(line, m.CallState.ABANDONED, reason, Outcome.ABANDONED)

    async def _preview_line(self, line: Line, agent: DialerAgent) -> None:
        """Preview (and callback delivery): ring the agent; on answer dial the contact and
        bridge them. An agent who does not answer is paused and the contact goes to the
        next free agent."""
        tel = self.telephony
        cfg = line.run.config
        try:
            agent_channel = tel.new_channel_id(agent=True)
            line.agent_channel = agent_channel
            rung = self.monotonic()
            ok = await tel.ring_agent(
                line.call_id,
                agent_channel,
                agent.endpoint,
                auto_answer=False,
                timeout=self.agent_ring_timeout,
                caller_id=_caller(line),
            )
            self._agent_leg(line, agent, rung, ok)
            if not ok:
                log.info("dialer_preview_no_answer", call=line.call_id, agent=agent.agent_id)
                self.distributor.outbound_ended(line.call_id, agent_no_answer=True)
                tel.forget(agent_channel)
                line.agent_channel = None
                line.agent_id = None
                line.declined.add(agent.agent_id)
                line.phase = "new"
                if cfg.running:
                    line.run.pending_preview.append(line)
                else:
                    self._release_pending_line(line)
                self.wake()
                return
            tone = await tel.start_tone(agent_channel)
            dialed = self.now()
            if not core.in_window(cfg.rules, dialed):  # it closed meanwhile
                await tel.hangup(agent_channel)
                self.distributor.outbound_ended(line.call_id)
                self._release_pending_line(line)
                return
            channel = tel.new_channel_id()
            line.contact_channel = channel
            line.phase = "ringing"
            line.dialed_at = self.monotonic()
            with self._tx() as s:
                if line.claim.callback_id is not None:
                    records.callback_delivered(s, line.claim.callback_id, dialed)
                records.contact_dialed(
                    s,
                    line.call_id,
                    channel,
                    tel.endpoint_for(line.claim.phone),
                    dialed,
                    agent_id=agent.agent_id,
                )
            line.run.count_dial()
            dial = asyncio.ensure_future(
                tel.dial_contact(
                    line.call_id,
                    channel,
                    line.claim.phone,
                    caller_id=cfg.caller_id,
                    timeout=self.ring_timeout,
                    amd=False,
                )
            )
            gone_agent = tel.gone(agent_channel)
            await asyncio.wait({dial, gone_agent}, return_when=asyncio.FIRST_COMPLETED)
            if not dial.done():  # the agent hung up while the contact rang
                await tel.hangup(channel)
                result = await dial
                if result.answered:
                    await tel.hangup(channel)
                self.distributor.outbound_ended(line.call_id)
                self._finish(line, m.CallState.NO_ANSWER, "agent_hangup_ringing", Outcome.NO_ANSWER)
                return
            result = dial.result()
            await tel.stop_playback(tone)
            line.run.learning.observe_dial(result.ring_seconds, result.answered)
            if not result.answered or gone_agent.done():
                await tel.hangup(agent_channel)
                if result.answered:
                    await tel.hangup(channel)
                self.distributor.outbound_ended(line.call_id)
                self._finish_unanswered(line, result)
                return
            line.answered_at = self.monotonic()
            with self._tx() as s:
                records.contact_answered(s, line.call_id, self.now())
            line.phase = "connecting"
            await self._bridge_and_talk(line, agent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dialer_preview_failed", call=line.call_id)
            if line.call_id in self.lines:
                await tel.hangup(line.agent_channel)
                await tel.hangup(line.contact_channel)
                with contextlib.suppress(Exception):
                    self.distributor.outbound_ended(line.call_id)
                self._finish(line, m.CallState.FAILED, "error", Outcome.FAILED)

    def _release_pending_line(self, line: Line) -> None:
        now = self.now()
        with self._tx() as s:
            release_claim(s, line.claim.contact_id, now)
            records.call_finished(s, line.call_id, m.CallState.FAILED, "not_dialed", now)
        self._forget_line(line)

    # -------------------------------------------------------------- endings

    def _finish_unanswered(self, line: Line, result: Any) -> None:
        cause = result.cause
        if result.error:
            state, reason, outcome = m.CallState.FAILED, "originate_failed", Outcome.FAILED
        elif cause in INVALID_CAUSES:
            state, reason, outcome = m.CallState.FAILED, f"invalid_number_{cause}", Outcome.INVALID
        elif cause in BUSY_CAUSES:
            state, reason, outcome = m.CallState.FAILED, "busy", Outcome.BUSY
        elif cause in FAILED_CAUSES:
            state, reason, outcome = m.CallState.FAILED, f"failed_{cause}", Outcome.FAILED
        else:
            state, reason, outcome = m.CallState.NO_ANSWER, "no_answer", Outcome.NO_ANSWER
        self._finish(line, state, reason, outcome)

    def _finish(self, line: Line, state: m.CallState, reason: str, outcome: Outcome) -> None:
        """The attempt is over: call row, attempt result, the contact's next state."""
        if line.call_id not in self.lines:
            return
        now = self.now()
        run = line.run
        callback = None
        created_by = None
        if line.feedback is not None and state == m.CallState.ENDED:
            outcome, callback, created_by = line.feedback
        with self._tx() as s:
            if line.answered_wall is not None:
                records.contact_answered(s, line.call_id, line.answered_wall)
            records.call_finished(s, line.call_id, state, reason, now)
            if outcome is Outcome.MACHINE and state == m.CallState.ENDED:
                records.correct_attempt(s, line.call_id, m.CallState.MACHINE)
            records.apply_outcome(
                s, line.claim.contact_id, outcome, run.config.rules, now, callback, created_by
            )
        if state == m.CallState.ABANDONED:
            run.abandoned += 1
            run.answered += 1
        elif state == m.CallState.ENDED:
            run.answered += 1
        log.info(
            "dialer_call_end",
            call=line.call_id,
            campaign=run.config.name,
            state=state.value,
            reason=reason,
            outcome=outcome.value,
        )
        self._forget_line(line)
        self.wake()

    # ------------------------------------------------------------ feedback

    def on_enquiry(self, event: EnquiryRegistered) -> None:
        """Campaign topics with an outcome (F-E4, F-E5, F-E6) act on the call's contact."""
        if event.contact_id is None:
            return
        with self._tx() as s:
            outcomes = {
                t.outcome
                for t in s.scalars(
                    select(m.EnquiryTopic).where(m.EnquiryTopic.id.in_(event.topic_ids))
                )
            }
        if m.TopicOutcome.CALLBACK in outcomes:
            if self._callback_scheduled(event):
                return  # the agent set the time with schedule_callback: keep it
            due = self.now() + self._retry_interval(event)
            self._feedback(
                event, Outcome.CALLBACK, core.Callback(due, event.agent_id, event.comment)
            )
        elif m.TopicOutcome.RETRY in outcomes:
            self._feedback(event, Outcome.MACHINE, None)
        elif m.TopicOutcome.FINAL in outcomes:
            self._feedback(event, Outcome.FINAL, None)

    def _callback_scheduled(self, event: EnquiryRegistered) -> bool:
        line = self.lines.get(event.call_id)
        if line is not None and line.feedback is not None:
            return line.feedback[0] is Outcome.CALLBACK
        with self._tx() as s:
            call = s.get(m.Call, event.call_id)
            if call is None:
                return False
            return (
                s.scalar(
                    select(m.ScheduledCallback.id).where(
                        m.ScheduledCallback.contact_id == event.contact_id,
                        m.ScheduledCallback.status.in_(
                            (m.CallbackStatus.PENDING, m.CallbackStatus.QUEUED)
                        ),
                        m.ScheduledCallback.created_at >= call.started_at,
                    )
                )
                is not None
            )

    def _retry_interval(self, event: EnquiryRegistered) -> dt.timedelta:
        run = self.runs.get(event.campaign_id or -1)
        if run is not None:
            return run.config.rules.retry_interval
        return dt.timedelta(hours=1)

    def schedule_callback(
        self,
        agent_id: int,
        call_id: int,
        due_at: dt.datetime,
        *,
        for_me: bool = True,
        comment: str = "",
    ) -> None:
        """F-E6 from the desk: call this contact back at ``due_at``, for this agent (reserved
        for the campaign's N minutes) or for all agents; the comment is shown on delivery."""
        if due_at.tzinfo is None:
            raise c.Refused(c.INVALID, "due_at: give a time with its zone")
        with self._tx() as s:
            call = s.get(m.Call, call_id)
            if call is None or call.agent_id != agent_id or call.contact_id is None:
                raise c.Refused(c.NOT_FOUND, f"call {call_id} is not yours")
            contact_id, campaign_id = call.contact_id, call.campaign_id
        event = EnquiryRegistered(call_id, agent_id, campaign_id, contact_id, (), comment, None)
        callback = core.Callback(due_at, agent_id if for_me else None, comment)
        self._feedback(event, Outcome.CALLBACK, callback)

    def _feedback(
        self, event: EnquiryRegistered, outcome: Outcome, callback: core.Callback | None
    ) -> None:
        line = self.lines.get(event.call_id)
        if line is not None and line.phase in ("talking", "connecting", "ending"):
            # the call goes on (or is hanging up: its end is written next): the outcome
            # applies when it ends, else the call's own outcome would overwrite it
            line.feedback = (outcome, callback, event.agent_id)
            return
        with self._tx() as s:
            contact = s.get(m.Contact, event.contact_id)
            campaign = s.get(m.Campaign, contact.campaign_id) if contact else None
            if contact is None or campaign is None or campaign.direction != m.Direction.OUTBOUND:
                return
            records.apply_outcome(
                s, contact.id, outcome, rules_of(campaign), self.now(), callback, event.agent_id
            )
            if outcome is Outcome.MACHINE:
                records.correct_attempt(s, event.call_id, m.CallState.MACHINE)
        log.info(
            "dialer_feedback", call=event.call_id, contact=event.contact_id, outcome=outcome.value
        )

    # --------------------------------------------------------------- view

    def snapshot(self) -> list[dict[str, Any]]:
        """Per running campaign: lines, the last pacing decision, today's abandon rate, its
        agents (working, ready), the pace (dials per minute) and the learned answer rate."""
        out = []
        for run in sorted(self.runs.values(), key=lambda r: r.config.campaign_id):
            stats = run.abandon_stats()
            dials = run.learning.dials
            out.append(
                {
                    "campaign_id": run.config.campaign_id,
                    "campaign": run.config.name,
                    "mode": run.config.mode,
                    "running": run.config.running,
                    "ringing": len(run.ringing_ages),
                    "waiting": len(run.waiting),
                    "lines": len(run.lines),
                    "answered_today": stats.answered,
                    "abandoned_today": stats.abandoned,
                    "abandon_rate": stats.rate,
                    "abandon_cap": run.config.abandon_cap,
                    "pacing": run.decision.reason if run.decision else "",
                    "nothing_to_dial": run.hopper_empty,
                    "agents": run.agents,
                    "ready": run.ready,
                    "dials_per_minute": round(run.dials_per_minute, 1),
                    # learned (recent history + this run); None before the first dial
                    "answer_rate": round(dials.answer_rate, 3) if dials.dials else None,
                }
            )
        return out


def _caller(line: Line) -> str:
    name = (line.claim.name or line.claim.phone).replace('"', "")
    return f'"{name}" <{line.claim.phone}>'


def _stopped(config: CampaignConfig) -> CampaignConfig:
    return replace(config, status=m.CampaignStatus.STOPPED.value)
