"""What the distributor tells the rest of ``serve`` through the event hub: an agent's
desk view changed (``contract.AgentViewChanged``, the SSE push re-renders it) and the
supervisors' panel changed (``supervision.PanelChanged``).

Who is told comes from ``AcdState``: a change on one line wakes only the desks that show
that line. Per-agent matching of finer changes would live here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import supervision as sv
from asterisk_cube.acd.state import AcdState
from asterisk_cube.core import routing as rt
from asterisk_cube.events import EventHub


class Notifier:
    def __init__(
        self, hub: EventHub, state: AcdState, now: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.hub = hub
        self.state = state
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def agents(self, *agent_ids: int) -> None:
        """These agents' desks changed (and so did the panel)."""
        for agent_id in dict.fromkeys(agent_ids):
            self.hub.publish(c.AgentViewChanged(agent_id=agent_id))
        self.hub.publish(sv.PanelChanged())  # the supervisors' panel (F-M1)

    def everyone(self) -> None:
        """Every logged-in agent's desk (and the panel)."""
        self.agents(*self.state.logged_in())

    def _showing(self, line_id: int) -> list[int]:
        """Every agent who may serve the line: its desk shows the line's queue, also while
        logged out (choosing its lines, F-I2)."""
        return [a.agent_id for a in self.state.agents.values() if line_id in a.permitted]

    def line(self, line_id: int | None, *also: int) -> None:
        """The agents whose desktop shows this line's queue and missed calls (a missed
        call: their list changed), and ``also``: nothing changed on the other desktops."""
        if line_id is None:
            self.everyone()
            return
        self.agents(*also, *self._showing(line_id))

    def queue(self, line_id: int | None, *also: int) -> None:
        """Only this line's queue changed (an arrival, an accepted offer): the desks that
        show it get their new count (``DeskLineCount``), ``also`` a fresh view."""
        if line_id is None:
            self.everyone()
            return
        self.agents(*also)
        listening = self.hub.listening(c.DeskLineCount, "agent_id")  # open desks only
        shown = [
            i
            for i in self._showing(line_id)
            if i not in also and (listening is None or i in listening)
        ]
        if not shown:
            return
        st = self.state
        waiting = st.waiting()
        reserved = (w.reserved_for for w in waiting if w.reserved_for is not None)
        views = [
            st.agents[i].routing_view()
            for i in dict.fromkeys((*shown, *reserved))
            if i in st.agents
        ]
        now = self.now()
        counts = rt.waiting_on_line(waiting, views, line_id, now)
        shared: dict[tuple[int, float], c.LineCount] = {}
        for agent_id in shown:
            lw = counts.get(agent_id)
            key = (
                (lw.count, (now - lw.oldest_queued_at).total_seconds())
                if lw is not None and lw.oldest_queued_at is not None
                else (lw.count if lw else 0, 0.0)
            )
            count = shared.get(key)
            if count is None:
                count = shared[key] = c.LineCount(line_id, *key)
            self.hub.publish(c.DeskLineCount(agent_id=agent_id, count=count))
