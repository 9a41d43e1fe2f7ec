"""The dialer's state and plumbing, owned by one object.

:class:`DialerState` (the base of ``service.Dialer``) holds the settings, the injected
clocks, the campaigns it works for (:class:`CampaignRun`) with their calls in flight
(:class:`Line`), the agents it marked "dialer dialing" and its timing probes. The rounds,
flows and outcomes modules are functions that take it as their first argument; nothing
else keeps dialer state."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd.outbound_hooks import DialerPort
from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.core import contacts as core
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.answer_odds import Stratum, stratum
from asterisk_cube.core.contacts import Outcome, PickKind
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger

from .campaigns import CampaignConfig
from .claims import Claim
from .pacer import Learning
from .ports import DialerTelephony
from .probes import Probes

log = get_logger(__name__)

T = TypeVar("T")

POOL_KINDS = frozenset({PickKind.FRESH, PickKind.RETRY})
#: The panel's pace: dials per minute over this many seconds.
PACE_WINDOW = 60.0


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
    finishing: bool = False  # its end is being written (outcomes.finish): once only

    @property
    def odds_key(self) -> Stratum:
        """The contact's answer-odds stratum (core.answer_odds), from its claim."""
        c = self.claim
        return stratum(c.attempt, c.last_result, str(c.list_id or ""))

    @property
    def contact_leg(self) -> str:
        """The contact's channel, on the paths that run once it was dialed."""
        assert self.contact_channel is not None, f"dialer call {self.call_id}: not dialed"
        return self.contact_channel

    @property
    def agent_leg(self) -> str:
        """The agent's channel, on the paths that run once its phone was rung."""
        assert self.agent_channel is not None, f"dialer call {self.call_id}: no agent leg"
        return self.agent_channel


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
    claiming: bool = False  # a pool claim is in flight (off the loop)
    #: agents a callback or preview claim is in flight for (off the loop): not free
    claiming_for: set[int] = field(default_factory=set)
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

    def _pool_ringing(self) -> list[Line]:
        """The pool's lines still ringing (preview lines are paced per agent)."""
        return [
            ln
            for ln in self.lines.values()
            if ln.phase == "ringing" and ln.dialed_at is not None and ln.mode != "preview"
        ]

    @property
    def ringing_ages(self) -> tuple[float, ...]:
        now = self.monotonic()
        return tuple(now - ln.dialed_at for ln in self._pool_ringing() if ln.dialed_at is not None)

    @property
    def ringing_odds(self) -> tuple[float, ...]:
        """Each of :attr:`ringing_ages`' lines' answer odds relative to the campaign's (same
        order); empty when the campaign paces every line alike."""
        learning = self.learning
        if not learning.per_contact_odds:
            return ()
        return tuple(learning.odds_multiplier(ln.odds_key) for ln in self._pool_ringing())

    def abandon_stats(self) -> pc.AbandonStats:
        """Today's finished attempts plus the lines in flight (an abandon counts from the
        moment it is decided, while its message still plays)."""
        answered = sum(1 for ln in self.lines.values() if ln.answered_at is not None)
        abandoned = sum(1 for ln in self.lines.values() if ln.abandoned)
        return pc.AbandonStats(self.abandoned + abandoned, self.answered + answered, "day")


class DialerState:
    """Settings, clocks, campaigns and lines in flight, and the plumbing every part uses."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        distributor: DialerPort,
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
        offload: Callable[..., Awaitable[Any]] = asyncio.to_thread,
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
        # runs blocking DB work off the event loop (a worker thread); the unit tests of
        # timing logic run it inline, so their fake clock does not follow a thread's time
        self.offload = offload
        self.runs: dict[int, CampaignRun] = {}
        self.lines: dict[int, Line] = {}
        self.probes = Probes()
        # bounded histograms (probes.Histogram): count, sum, min, max, quantiles
        self.connect_delays = self.probes.connect_delays  # answered -> bridged (s)
        self.agent_answer_delays = self.probes.agent_answer_delays  # rung -> answered
        self.abandon_waits = self.probes.abandon_waits  # answered -> abandon decided (s)
        self.step_seconds = self.probes.step_seconds  # how long each step took
        self.db_on_loop = self.probes.db_on_loop  # each DB transaction run on the loop
        self.db_on_loop_by: Counter[str] = Counter()  # seconds on the loop per kind of work
        self.flagged: set[int] = set()  # agents marked "dialer dialing" (F-I5)
        self.loaded_at = -1e9
        self.recovered = False
        self.wake_event = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.listen()

    def listen(self) -> None:
        """Subscribe to what the distributor reports (``Dialer``: registered enquiries)."""

    # ------------------------------------------------------------ plumbing

    def now(self) -> dt.datetime:
        return self._clock()

    @contextlib.contextmanager
    def tx(self, kind: str = "other") -> Iterator[Session]:
        """One transaction; its duration is observed in ``db_on_loop`` (and summed per
        ``kind`` in ``db_on_loop_by``) when it runs on the event loop (real elapsed time,
        ``perf_counter``: this probe measures the loop's cost, not timing logic, so it
        does not follow the injected clock)."""
        began = time.perf_counter()
        try:
            with transaction(self.sessions) as s:
                yield s
        finally:
            if _on_loop():
                took = time.perf_counter() - began
                self.db_on_loop.observe(took)
                # seconds, a float: typeshed types a Counter's counts as int
                self.db_on_loop_by[kind] += took  # type: ignore[assignment]

    async def committed(self, kind: str, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction off the event loop (``offload``: a worker
        thread), returning once it is committed: what follows (an originate, the
        contact's next offer, the line's bookkeeping) sees it written. ``work`` gets every
        value it writes bound on the loop; it reads no loop state. Cancelled meanwhile
        (closing), the transaction still completes, then the cancellation goes on."""

        job = asyncio.ensure_future(self.offload(self.in_tx, kind, work))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await job
            raise

    def in_tx(self, kind: str, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction (``committed`` runs it in a worker)."""
        with self.tx(kind) as s:
            return work(s)

    @property
    def phone(self) -> DialerTelephony:
        """The telephony port, for the flows (the loop runs rounds only with it: loop.py)."""
        assert self.telephony is not None, "no telephony attached to the dialer"
        return self.telephony

    def wake(self) -> None:
        self.wake_event.set()

    def refresh(self) -> None:
        """Reload the campaigns at the next step (e.g. after a start/stop from the desk)."""
        self.loaded_at = -1e9
        self.wake_event.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("dialer_task_failed", task=task.get_name(), error=repr(task.exception()))

    def new_line(self, run: CampaignRun, claim: Claim, call_id: int, mode: str) -> Line:
        line = Line(call_id, run, claim, mode)
        run.lines[call_id] = line
        self.lines[call_id] = line
        return line

    def forget_line(self, line: Line) -> None:
        line.run.lines.pop(line.call_id, None)
        self.lines.pop(line.call_id, None)
        for ch in (line.contact_channel, line.agent_channel):
            if ch and self.telephony is not None:
                self.telephony.forget(ch)
        if not line.run.config.running and not line.run.lines:
            self.runs.pop(line.run.config.campaign_id, None)

    def agents_of_earlier_runs(self, run: CampaignRun) -> set[int]:
        """Agents work for the first running campaign whose skill they hold."""
        taken: set[int] = set()
        for other in sorted(self.runs.values(), key=lambda r: r.config.campaign_id):
            if other is run:
                break
            taken.update(a.agent_id for a in self.distributor.dialer_pool(other.config.skill))
        return taken


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def endpoint_of(agent: DialerAgent) -> str:
    """The phone of an agent the dialer connects (``pacer.free``: only agents with one)."""
    assert agent.endpoint is not None, f"agent {agent.agent_id} has no phone"
    return agent.endpoint


def caller_id_of(line: Line) -> str:
    """What the agent's phone shows: the contact's name and number."""
    name = (line.claim.name or line.claim.phone).replace('"', "")
    return f'"{name}" <{line.claim.phone}>'


def stopped(config: CampaignConfig) -> CampaignConfig:
    return replace(config, status=m.CampaignStatus.STOPPED.value)
