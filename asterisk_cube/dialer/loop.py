"""The dialer's loop: a step every ``tick`` and whenever an agent's state changes (wake-ups
of a burst coalesced), the campaigns reread every ``reload_every`` seconds, and what a
previous run of this node left behind recovered once at start."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from asterisk_cube.acd import supervision as sv
from asterisk_cube.core import pacing as pc
from asterisk_cube.logs import get_logger

from . import records
from .assign import set_flags
from .campaigns import CampaignConfig, outbound_campaigns
from .outcomes import release_pending
from .pacer import Learning, learned_from_history
from .rounds import step_campaign
from .state import CampaignRun, DialerState, stopped

log = get_logger(__name__)


#: what wakes the loop: the distributor's state changed (an agent, a line's queue). One
#: PanelChanged per change, where each desk it touches gets its own AgentViewChanged or
#: DeskLineCount (issue #19: 20 wake-ups per arrival with 20 agents on the line)
WAKE_ON = (sv.PanelChanged,)


async def run(d: DialerState) -> None:
    """The runtime component: step every ``tick`` or when an agent changes."""
    recover(d)
    sub = d.hub.subscribe(*WAKE_ON, name="dialer") if d.hub else None
    waker = None
    if sub is not None:
        waker = asyncio.create_task(_follow(d, sub), name="dialer-wake")
    log.info("dialer_start", node=d.node)
    try:
        while True:
            d.wake_event.clear()
            began = d.monotonic()
            try:
                step(d)
            except Exception:
                log.exception("dialer_step_failed")
            d.step_seconds.observe(d.monotonic() - began)
            if d.coalesce > 0:  # the wake-ups of a burst (every agent change wakes
                # us) collapse into one step instead of one step each
                await asyncio.sleep(d.coalesce)
            waiter = asyncio.ensure_future(d.wake_event.wait())
            try:  # not wait_for: on 3.11 it can swallow our cancellation
                await asyncio.wait({waiter}, timeout=max(0.0, d.tick - d.coalesce))
            finally:
                waiter.cancel()
    finally:
        if waker is not None:
            waker.cancel()
        if sub is not None:
            sub.close()
        await close(d)


async def _follow(d: DialerState, sub) -> None:
    async for _event in sub:
        d.wake_event.set()


#: a line in these phases has no agent bridged with its contact yet
UNBRIDGED = frozenset({"agent", "ringing", "waiting", "connecting"})


async def close(d: DialerState) -> None:
    """End the lines nobody is talking on, cancel the lines' tasks, give back contacts not
    dialed, clear "dialer dialing"."""
    # Once this serve stops nobody connects them: a contact left ringing rings on until
    # the originate timeout (and, answering, hears silence); an agent's phone rings for
    # nothing. Talking calls go on in Asterisk; the next start recovers them.
    unbridged = [line for line in d.lines.values() if line.phase in UNBRIDGED]
    await asyncio.gather(
        *(
            d.phone.hangup(channel)
            for line in unbridged
            for channel in (line.contact_channel, line.agent_channel)
            if channel
        ),
        return_exceptions=True,
    )
    for task in list(d.tasks):
        task.cancel()
    for task in list(d.tasks):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    with contextlib.suppress(Exception):
        release_pending(d, list(d.runs.values()))
    for agent_id in list(d.flagged):
        with contextlib.suppress(Exception):
            d.distributor.set_dialer_dialing(agent_id, False)
    d.flagged.clear()


def recover(d: DialerState) -> dict[str, int]:
    """Once at start: what a previous run of this node left in the database."""
    if d.recovered:
        return {}
    d.recovered = True
    with d.tx("recover") as s:
        configs = {c_.campaign_id: c_ for c_ in outbound_campaigns(s, running_only=False)}
        stats = records.recover(
            s,
            d.node,
            d.now(),
            lambda cid: configs[cid].rules if cid in configs else None,
            keep_calls=d.lines.keys(),
        )
    if any(stats.values()):
        log.info("dialer_recovered", **stats)
    return stats


def step(d: DialerState) -> None:
    """One round over every campaign (synchronous: DB claims, hooks, task spawns)."""
    mono = d.monotonic()
    if mono - d.loaded_at >= d.reload_every:
        reload(d)
        d.loaded_at = mono
    if d.telephony is None or not getattr(d.telephony, "connected", True):
        return
    if not d.runs:  # no campaign running: nothing to dial, nobody to mark dialing
        set_flags(d, set())
        return  # (an inbound-only center wakes us on every agent and queue change)
    now = d.now()
    everyone = d.distributor.dialer_pool()
    logged_in = frozenset(a.agent_id for a in everyone)
    taken: set[int] = set()
    want_flag: set[int] = set()
    for camp in sorted(d.runs.values(), key=lambda r: r.config.campaign_id):
        pool = [a for a in d.distributor.dialer_pool(camp.config.skill) if a.agent_id not in taken]
        taken.update(a.agent_id for a in pool)
        want_flag |= step_campaign(d, camp, pool, now, logged_in)
    set_flags(d, want_flag)


def reload(d: DialerState) -> None:
    """The running campaigns from the database: new ones start (learning from their
    history), changed ones take the new settings, stopped ones give back what waits."""
    with d.tx("reload") as s:
        running = {c_.campaign_id: c_ for c_ in outbound_campaigns(s)}
    for cid, config in running.items():
        camp = d.runs.get(cid)
        if camp is None:
            prior = d.prior or pc.Prior(dial_timeout=d.ring_timeout)
            learning = Learning(
                prior,
                wrap_up_seconds=config.wrap_up_seconds,
                grace_seconds=d.connect_window,
            )
            learn_history(d, config, learning)
            d.runs[cid] = CampaignRun(config, learning, monotonic=d.monotonic)
            log.info("dialer_campaign_started", campaign=config.name, mode=config.mode)
        elif camp.config != config:
            camp.config = config
            camp.learning.wrap_up_seconds = config.wrap_up_seconds
    for cid, camp in list(d.runs.items()):
        if cid in running:
            continue
        if camp.config.running:
            log.info("dialer_campaign_stopped", campaign=camp.config.name)
            camp.config = stopped(camp.config)
            release_pending(d, [camp])
        if not camp.lines:
            del d.runs[cid]


def learn_history(d: DialerState, config: CampaignConfig, learning: Learning) -> None:
    """A campaign (re)starting in this process learns from its recent calls."""
    if d.history_days <= 0:
        return
    since = d.now() - dt.timedelta(days=d.history_days)
    try:
        with d.tx("history") as s:
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
