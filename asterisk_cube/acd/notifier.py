"""What the distributor tells the rest of ``serve`` through the event hub: an agent's
desk view changed (``contract.AgentViewChanged``, the SSE push re-renders it) and the
supervisors' panel changed (``supervision.PanelChanged``).

Who is told comes from ``AcdState``: a change on one line wakes only the desks that show
that line. Per-agent matching of finer changes would live here."""

from __future__ import annotations

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import supervision as sv
from asterisk_cube.acd.state import AcdState
from asterisk_cube.core import agents as ag
from asterisk_cube.events import EventHub


class Notifier:
    def __init__(self, hub: EventHub, state: AcdState) -> None:
        self.hub = hub
        self.state = state

    def agents(self, *agent_ids: int) -> None:
        """These agents' desks changed (and so did the panel)."""
        for agent_id in dict.fromkeys(agent_ids):
            self.hub.publish(c.AgentViewChanged(agent_id=agent_id))
        self.hub.publish(sv.PanelChanged())  # the supervisors' panel (F-M1)

    def everyone(self) -> None:
        """Every logged-in agent's desk (and the panel)."""
        self.agents(*self.state.logged_in())

    def line(self, line_id: int | None, *also: int) -> None:
        """The agents whose desktop shows this line's queue (and missed calls), and
        ``also``: an arrival or a hang-up changes nothing on the other desktops."""
        if line_id is None:
            self.everyone()
            return
        self.agents(
            *also,
            *(
                a.agent_id
                for a in self.state.agents.values()
                if a.status.state != ag.AgentState.LOGGED_OUT and line_id in a.permitted
            ),
        )
