"""Giving a dialer call an agent: through the distributor's outbound hooks only."""

from __future__ import annotations

import contextlib

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.state import DialerAgent
from asterisk_cube.logs import get_logger

from .pacer import free_agent
from .state import CampaignRun, DialerState, Line

log = get_logger(__name__)


def take_agent(d: DialerState, line: Line, agent: DialerAgent, *, connected: bool) -> bool:
    try:
        d.distributor.outbound_started(
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
    d.flagged.discard(agent.agent_id)  # outbound_started cleared it
    return True


def serve_waiting(d: DialerState, run: CampaignRun, free: list[DialerAgent]) -> None:
    """Answered contacts waiting for an agent get the longest-idle free ones (taken out of
    ``free``)."""
    while run.waiting and free:
        line = run.waiting[0]
        waited = d.monotonic() - (line.answered_at or 0.0)
        if line.waiter is None or line.waiter.done() or waited > d.connect_window:
            run.waiting.popleft()
            continue
        agent = free.pop(0)
        if take_agent(d, line, agent, connected=False):
            run.waiting.popleft()
            line.waiter.set_result(agent)


def step_waiting(d: DialerState, run: CampaignRun) -> None:
    """Serve answered contacts at once (not at the next tick)."""
    pool = d.distributor.dialer_pool(run.config.skill)
    others = d.agents_of_earlier_runs(run)
    free = sorted(
        (a for a in pool if free_agent(a) and a.agent_id not in others),
        key=lambda a: (a.idle_since or a.since or d.now(), a.agent_id),
    )
    serve_waiting(d, run, free)


def set_flags(d: DialerState, wanted: set[int]) -> None:
    """F-I5: mark exactly these agents "dialer dialing" (inbound blocked for them)."""
    for agent_id in d.flagged - wanted:
        with contextlib.suppress(c.Refused):
            d.distributor.set_dialer_dialing(agent_id, False)
    for agent_id in wanted - d.flagged:
        with contextlib.suppress(c.Refused):
            d.distributor.set_dialer_dialing(agent_id, True)
    d.flagged = set(wanted)
