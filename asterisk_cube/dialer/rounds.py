"""One campaign's share of a dialer step, as rounds in this order:

1. :func:`serve_waiting` (in :mod:`.assign`): answered contacts get the longest-idle
   free agents;
2. :func:`callbacks_round`: due scheduled callbacks, preview style, in every mode;
3. :func:`declined_round`: contacts an agent let ring go to the next free agent who has
   not, or back to the list when every agent has;
4. :func:`preview_round` (preview campaigns) or :func:`pool_round` (power/predictive:
   the pacer decides how many lines, that many contacts are claimed and dialed).

Each round takes the agents it uses out of ``free``. Every claim runs off the event loop
(a worker thread): the pool round's (many contacts, :func:`claim_pool`) and a callback
or preview claim (one contact for one agent, :func:`claim_for_agent`); an agent a claim
is in flight for is not free until it lands, so it is never given two at once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from zoneinfo import ZoneInfo

from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.agents import AgentState
from asterisk_cube.core.contacts import PickKind
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

from . import records
from .assign import serve_waiting
from .campaigns import CampaignConfig
from .claims import Claim, any_callback_due, claim_contacts, release_claim
from .flows import start_pool_line
from .outcomes import release_declined
from .pacer import free_agent, pacing_config, pacing_state
from .preview import offer_preview, start_preview
from .state import POOL_KINDS, CampaignRun, DialerState

log = get_logger(__name__)


def step_campaign(
    d: DialerState,
    run: CampaignRun,
    pool: list[DialerAgent],
    now: dt.datetime,
    logged_in: frozenset[int],
) -> set[int]:
    """One campaign's rounds; returns the agents to mark "dialer dialing" (F-I5)."""
    free = sorted(
        (a for a in pool if free_agent(a)),
        key=lambda a: (a.idle_since or a.since or now, a.agent_id),
    )
    run.agents = sum(1 for a in pool if a.state is not AgentState.PAUSED)
    run.ready = len(free)
    serve_waiting(d, run, free)
    free = [a for a in free if a.agent_id not in run.claiming_for]
    if not run.config.running:
        return set()
    refresh_stats(d, run, now)
    callbacks_round(d, run, free, now, logged_in)
    declined_round(d, run, pool, free)
    if run.config.mode == m.DialMode.PREVIEW.value:
        preview_round(d, run, free, now, logged_in)
        return set()
    return pool_round(d, run, pool, free, now, logged_in)


def callbacks_round(
    d: DialerState,
    run: CampaignRun,
    free: list[DialerAgent],
    now: dt.datetime,
    logged_in: frozenset[int],
) -> None:
    """Due scheduled callbacks first, preview style, in every mode; reserved ones only to
    their agent."""
    if not free or empty(d, run, "callback"):
        return
    if not callback_due(d, run, now):  # none due: look again in a second
        run.empty_until["callback"] = d.monotonic() + 1.0
        return
    for agent in list(free):
        claim_for_agent(d, run, agent, now, logged_in, key="callback", kinds={PickKind.CALLBACK})
        free.remove(agent)


def declined_round(
    d: DialerState, run: CampaignRun, pool: list[DialerAgent], free: list[DialerAgent]
) -> None:
    """Contacts (preview, or callbacks in any mode) an agent let ring: to the next free
    agent who has not, never back to one who has."""
    for agent in list(free):
        line = next((ln for ln in run.pending_preview if agent.agent_id not in ln.declined), None)
        if line is not None:
            run.pending_preview.remove(line)
            if offer_preview(d, line, agent):
                free.remove(agent)
            else:
                run.pending_preview.appendleft(line)
    requeue_declined(d, run, pool, free)


def requeue_declined(
    d: DialerState, run: CampaignRun, pool: list[DialerAgent], free: list[DialerAgent]
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
        release_declined(d, line)


def preview_round(
    d: DialerState,
    run: CampaignRun,
    free: list[DialerAgent],
    now: dt.datetime,
    logged_in: frozenset[int],
) -> None:
    """Preview: each free agent is offered a contact of its own."""
    for agent in list(free):
        if empty(d, run, "preview"):
            break
        claim_for_agent(d, run, agent, now, logged_in, key="preview", kinds=frozenset(PickKind))
        free.remove(agent)


def claim_for_agent(
    d: DialerState,
    run: CampaignRun,
    agent: DialerAgent,
    now: dt.datetime,
    logged_in: frozenset[int],
    *,
    key: str,
    kinds: frozenset[PickKind] | set[PickKind],
) -> None:
    """One contact for this agent (a due callback, or preview), claimed off the loop;
    the agent is held (``run.claiming_for``) until the claim lands."""
    run.claiming_for.add(agent.agent_id)
    d.spawn(
        claim_one(d, run, agent, now, logged_in, key, frozenset(kinds)),
        f"claim-{run.config.campaign_id}-{agent.agent_id}",
    )


async def claim_one(
    d: DialerState,
    run: CampaignRun,
    agent: DialerAgent,
    now: dt.datetime,
    logged_in: frozenset[int],
    key: str,
    kinds: frozenset[PickKind],
) -> None:
    cfg = run.config
    work = asyncio.ensure_future(
        d.offload(
            claim_rows,
            d,
            cfg,
            now,
            1,
            mode=m.DialMode.PREVIEW.value,
            for_agent=agent.agent_id,
            logged_in=logged_in,
            kinds=kinds,
        )
    )
    try:
        claims = await asyncio.shield(work)
    except asyncio.CancelledError:  # closing: the claim still lands, give it back
        with contextlib.suppress(Exception):
            give_back(d, await work)
        raise
    finally:
        run.claiming_for.discard(agent.agent_id)
        d.wake()  # the agent is free again for the next step, or has its contact
    noted(d, run, claims, 1, key)
    connected = d.telephony is not None and getattr(d.telephony, "connected", True)
    if not run.config.running or d.runs.get(cfg.campaign_id) is not run or not connected:
        give_back(d, claims)  # stopped (or Asterisk lost) while claiming: not dialed
        return
    if claims:
        claimed, call_id = claims[0]
        start_preview(d, run, claimed, call_id, agent, now)  # given back if the agent is gone


def pool_round(
    d: DialerState,
    run: CampaignRun,
    pool: list[DialerAgent],
    free: list[DialerAgent],
    now: dt.datetime,
    logged_in: frozenset[int],
) -> set[int]:
    """Power/predictive: the pacer sees the agents as they are after the earlier rounds
    and says how many lines to dial; returns the agents to mark "dialer dialing"."""
    cfg = run.config
    mine = {a.agent_id for a in pool}
    pool = [a for a in d.distributor.dialer_pool(cfg.skill) if a.agent_id in mine]
    free = [a for a in free if any(p.agent_id == a.agent_id and free_agent(p) for p in pool)]
    waiting = len(run.waiting) + d.distributor.waiting_for_campaign(cfg.campaign_id)
    in_call = tuple(
        d.monotonic() - ln.answered_at
        for ln in run.lines.values()
        if ln.phase == "talking" and ln.answered_at is not None
    )
    state = pacing_state(
        pool,
        now,
        estimates=run.learning.estimates(in_call, now=d.monotonic()),
        config=pacing_config(cfg),
        ringing=run.ringing_ages,
        ringing_odds=run.ringing_odds,
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
    if decision.dials > 0 and not run.claiming and not empty(d, run, "pool"):
        run.claiming = True
        d.spawn(claim_pool(d, run, now, decision.dials, logged_in), f"claim-{cfg.campaign_id}")
    if not (run.ringing_ages or run.waiting or run.claiming):
        return set()
    # F-I5: inbound is blocked for the agents the lines ring for; F-I8: as many of the
    # longest-idle agents as customer callbacks wait stay open for them
    callbacks = d.distributor.waiting_for_campaign(cfg.campaign_id)
    return {a.agent_id for a in free[callbacks:]}


def empty(d: DialerState, run: CampaignRun, key: str) -> bool:
    return d.monotonic() < run.empty_until.get(key, 0.0)


def claim_rows(
    d: DialerState,
    config: CampaignConfig,
    now: dt.datetime,
    limit: int,
    *,
    mode: str,
    for_agent: int | None = None,
    logged_in: frozenset[int] = frozenset(),
    kinds=frozenset(PickKind),
) -> list[tuple[Claim, int]]:
    """Claim contacts and open their call rows, in one transaction (any thread: it reads
    no loop state)."""
    with d.tx("claim") as s:
        found = claim_contacts(
            s,
            config,
            now,
            limit,
            node=d.node,
            for_agent=for_agent,
            logged_in=logged_in,
            kinds=kinds,
        )
        return [
            (
                c_,
                records.open_call(
                    s,
                    c_,
                    mode,
                    d.node,
                    now,
                    config.caller_id,
                    call_id=d.distributor.ids.next(m.Call),
                ),
            )
            for c_ in found
        ]


def noted(
    d: DialerState, run: CampaignRun, claims: list[tuple[Claim, int]], limit: int, key: str | None
) -> list[tuple[Claim, int]]:
    """After a claim: nothing more due now means look again in a second (not every tick)."""
    if len(claims) < limit and key is not None:
        run.empty_until[key] = d.monotonic() + 1.0
        if key in ("pool", "preview") and not claims and not run.hopper_empty:
            run.hopper_empty = True  # shown in snapshot(); logged once
            log.info("dialer_nothing_to_dial", campaign=run.config.name)
    if claims and key in ("pool", "preview"):
        run.hopper_empty = False
    return claims


async def claim_pool(
    d: DialerState, run: CampaignRun, now: dt.datetime, limit: int, logged_in: frozenset[int]
) -> None:
    """Power/predictive: claim ``limit`` contacts off the event loop (``d.offload``, a
    worker thread) and dial them. One claim per campaign at a time (``run.claiming``);
    the pacer's next decision waits for it."""
    cfg = run.config
    work = asyncio.ensure_future(
        d.offload(
            claim_rows, d, cfg, now, limit, mode=cfg.mode, logged_in=logged_in, kinds=POOL_KINDS
        )
    )
    try:
        claims = await asyncio.shield(work)
    except asyncio.CancelledError:  # closing: the claim still lands, give it back
        with contextlib.suppress(Exception):
            give_back(d, await work)
        raise
    finally:
        run.claiming = False
    noted(d, run, claims, limit, "pool")
    connected = d.telephony is not None and getattr(d.telephony, "connected", True)
    if not run.config.running or d.runs.get(cfg.campaign_id) is not run or not connected:
        give_back(d, claims)  # stopped (or Asterisk lost) while claiming: not dialed
        return
    for claimed, call_id in claims:
        start_pool_line(d, run, claimed, call_id)
    if claims:
        d.wake()  # the next step sees them ringing (and marks the agents, F-I5)


def give_back(d: DialerState, claims: list[tuple[Claim, int]]) -> None:
    now = d.now()
    with d.tx("release") as s:
        for claimed, call_id in claims:
            release_claim(s, claimed.contact_id, now)
            records.call_finished(s, call_id, m.CallState.FAILED, "not_dialed", now)


def callback_due(d: DialerState, run: CampaignRun, now: dt.datetime) -> bool:
    """One cheap look before a callback claim per free agent (each its own statement,
    on the event loop: with ten free agents in a few campaigns that was most of a
    step)."""
    with d.tx("callback_due") as s:
        return any_callback_due(s, run.config, now)


def refresh_stats(d: DialerState, run: CampaignRun, now: dt.datetime) -> None:
    """Today's abandoned and answered attempts, reread every ``stats_every`` seconds."""
    zone = ZoneInfo(run.config.timezone)
    today = now.astimezone(zone).date()
    if d.monotonic() - run.stats_at < d.stats_every and run.stats_day == today:
        return
    since = dt.datetime.combine(today, dt.time(0), zone)
    with d.tx("stats") as s:
        run.abandoned, run.answered = records.abandon_counts(s, run.config.campaign_id, since)
    run.stats_at = d.monotonic()
    run.stats_day = today
