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

Each line runs as a task (``flows.pool_line`` / ``preview.preview_line``). An answered contact must
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

import datetime as dt
from typing import Any

from asterisk_cube.config import DialerSettings

from . import feedback, loop
from .outcomes import BUSY_CAUSES, FAILED_CAUSES, INVALID_CAUSES
from .ports import DialerTelephony
from .probes import Histogram
from .state import PACE_WINDOW, POOL_KINDS, CampaignRun, DialerState, Line

__all__ = [
    "BUSY_CAUSES",
    "FAILED_CAUSES",
    "INVALID_CAUSES",
    "PACE_WINDOW",
    "POOL_KINDS",
    "CampaignRun",
    "Dialer",
    "DialerTelephony",
    "Line",
    "dialer_options",
]

# Where things are (issue #13): ports.py (what the dialer needs of Asterisk), state.py
# (Line, CampaignRun, DialerState: the one owner of the dialer's state), loop.py (run,
# step, reload, recover), rounds.py (a campaign's rounds: callbacks, declined, preview,
# pool), assign.py (agents through the distributor's hooks), flows.py (pool line,
# connect, bridge, abandon), preview.py (preview line, callback delivery), outcomes.py
# (how a call ends), feedback.py (F-E4..F-E6), probes.py (bounded timing histograms).


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


class Dialer(DialerState):
    """The dialer's face to the runtime, the desk and the panel (``DialerState`` takes the
    keyword arguments: settings and the injected clocks)."""

    def listen(self) -> None:
        self.distributor.add_enquiry_listener(self.on_enquiry)

    async def run(self) -> None:
        """The runtime component: step every ``tick`` or when an agent changes."""
        await loop.run(self)

    async def close(self) -> None:
        await loop.close(self)

    def recover(self) -> dict[str, int]:
        """Once at start: what a previous run of this node left in the database."""
        return loop.recover(self)

    def step(self) -> None:
        """One round over every campaign (synchronous: DB claims, hooks, task spawns)."""
        loop.step(self)

    def _reload(self) -> None:
        loop.reload(self)

    def on_enquiry(self, event: Any) -> None:
        """Campaign topics with an outcome (F-E4, F-E5, F-E6) act on the call's contact."""
        feedback.on_enquiry(self, event)

    def schedule_callback(
        self,
        agent_id: int,
        call_id: int,
        due_at: dt.datetime,
        *,
        for_me: bool = True,
        comment: str = "",
    ) -> None:
        """F-E6 from the desk: call this contact back at ``due_at``, for this agent or for
        all agents; the comment is shown on delivery."""
        feedback.schedule_callback(self, agent_id, call_id, due_at, for_me=for_me, comment=comment)

    def histograms(self) -> tuple[Histogram, ...]:
        """The timing histograms, for ``GET /metrics``."""
        return self.probes.all()

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
