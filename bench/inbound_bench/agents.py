"""The 20 bench agents (``desktop`` or ``direct`` mode: see the package doc)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from asterisk_cube.acd import contract as c
from asterisk_cube.web import push
from bench.inbound_bench.common import (
    SYSTEM_PAUSES,
)

# ---------------------------------------------------------------------------- bench agents


class BenchAgents:
    """20 agents that accept every offer at once (see the module doc for the two modes)."""

    def __init__(self, distributor: Any, hub: Any, agent_ids: list[int], mode: str) -> None:
        self.desk = distributor
        self.hub = hub
        self.agent_ids = agent_ids
        self.mode = mode
        self.tasks: list[asyncio.Task] = []
        self.accepted = 0
        self.refused: dict[str, int] = defaultdict(int)
        self.re_readied = 0
        self.views = 0
        self.view_seconds = 0.0
        self.sent = 0  # characters the desks' pushes would send

    def start(self) -> None:
        for agent_id in self.agent_ids:
            self.tasks.append(asyncio.create_task(self._run(agent_id), name=f"agent-{agent_id}"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _run(self, agent_id: int) -> None:
        sub = self.hub.subscribe(  # as web/push.py: only this agent's changes
            c.AgentViewChanged,
            # an open desk gets its line counts; direct agents have none open
            *([c.DeskLineCount] if self.mode == "desktop" and hasattr(c, "DeskLineCount") else []),
            maxsize=256,
            name=f"bench-agent-{agent_id}",
            agent_id=agent_id,
        )
        try:
            await self._act(agent_id)
            while True:
                try:
                    event = await sub.get()
                except EOFError:
                    return
                relevant = False
                counts: dict[int, c.LineCount] = {}
                while event is not None:
                    if not isinstance(event, c.AgentViewChanged):
                        counts[event.count.line_id] = event.count
                    else:
                        relevant = True
                    event = sub.get_nowait()
                if sub.take_stale():
                    relevant = True
                if relevant:
                    await self._act(agent_id)
                elif counts and self.mode == "desktop":  # what the push sends for a count
                    self.sent += sum(len(push.count_message(n)) for n in counts.values())
        finally:
            sub.close()

    def _look(self, agent_id: int) -> tuple[int | None, int | None, str, str | None]:
        d = self.desk
        agent = d.agents[agent_id]
        offer = next(
            (
                call.call_id
                for call in d.calls.values()
                if call.phase == "offered" and call.agent_id == agent_id
            ),
            None,
        )
        card = d.calls.get(agent.card_call_id) if agent.card_call_id else None
        ended = card.call_id if card is not None and card.phase == "ended" else None
        return offer, ended, agent.status.state.value, agent.status.pause_reason

    async def _act(self, agent_id: int) -> None:
        try:
            if self.mode == "desktop":
                started = time.perf_counter()
                view = await self.desk.view(agent_id)
                self.sent += len(push.sse_message("view", view.to_dict()))  # as the push
                self.view_seconds += time.perf_counter() - started
                self.views += 1
                offer = view.offer.call_id if view.offer else None
                ended = view.call.call_id if view.call and view.call.state == "ended" else None
                state, reason = view.state, view.pause_reason
            else:
                offer, ended, state, reason = self._look(agent_id)
            if ended is not None:  # close the last card first (accepting would orphan it)
                await self.desk.close_call(agent_id, ended)
            if offer is not None:
                await self.desk.accept(agent_id, offer)
                self.accepted += 1
            if state == "paused" and reason in SYSTEM_PAUSES:
                await self.desk.ready(agent_id)
                self.re_readied += 1
        except c.Refused as exc:  # raced with the caller hanging up: normal under load
            self.refused[exc.reason] += 1
