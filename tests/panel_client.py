"""The test supervisor client: the live panel's JSON API and SSE push, from Python.

    async with SupervisorClient(url) as sup:
        await sup.login("siri", "siri-secret-1")
        async with sup.panel_events() as panel:        # snapshot first, then patches
            state = await panel.wait_for(lambda s: s["lines"]["1"]["waiting"] == 1)
        await sup.set_priority(1, 50)

``PanelStream`` applies the patches to the snapshot exactly as ``panel.js`` does, so
``stream.state`` is what the browser would show. Refusals raise ``ApiError``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from agent_client import AgentClient, ApiError, next_event

# the feed's own list: a section added to the feed ("nodes", issue #14) is one here too
from asterisk_cube.web.panel_feed import SECTIONS

__all__ = ["ApiError", "PanelStream", "SupervisorClient"]

State = dict[str, Any]


class PanelStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.state: State = {name: {} for name in SECTIONS}
        self.seq = -1
        self.snapshots = 0
        self.patches = 0
        self.lags: list[float] = []  # receipt - oldest event publish time, per patch
        self.history: list[dict[str, Any]] = []  # the last messages (for failure messages)
        # every message is read as it arrives and stamped then: a test busy elsewhere (e.g.
        # waiting for its SIPp caller to end) must not count as the panel's lag
        self._received: asyncio.Queue[tuple[float, str, dict[str, Any]] | BaseException]
        self._received = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        try:
            while True:
                event, data = await next_event(self._lines, "panel stream")
                self._received.put_nowait((time.time(), event, json.loads(data)))
        except BaseException as exc:  # the stream ended or failed: next() raises it
            self._received.put_nowait(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    def close(self) -> None:
        self._reader.cancel()

    async def _message(self) -> tuple[float, str, dict[str, Any]]:
        item = await self._received.get()
        if isinstance(item, BaseException):
            self._received.put_nowait(item)  # and on every later call
            raise item
        return item

    async def next(self, timeout: float = 10.0) -> str:
        """Read and apply one message; returns its kind ("snapshot" or "patch")."""
        received, kind, data = await asyncio.wait_for(self._message(), timeout)
        self.history = [*self.history[-30:], {"kind": kind, **data}]
        if kind == "snapshot":
            self.snapshots += 1
            self.seq = data["seq"]
            self.state = {name: dict(data.get(name, {})) for name in SECTIONS}
        elif kind == "patch":
            if data.get("ts"):
                self.lags.append(received - data["ts"])
            if data["seq"] > self.seq:
                self.seq = data["seq"]
                self.patches += 1
                for name, items in data.get("set", {}).items():
                    self.state[name].update(items)
                for name, keys in data.get("del", {}).items():
                    for key in keys:
                        self.state[name].pop(key, None)
        return kind

    async def wait_for(self, predicate: Callable[[State], Any], timeout: float = 10.0) -> State:
        """Apply messages until ``predicate(state)`` holds (checked on the current state
        first)."""

        async def loop() -> State:
            if self.seq >= 0 and predicate(self.state):
                return self.state
            while True:
                await self.next(timeout=None)  # the outer wait_for bounds it
                if predicate(self.state):
                    return self.state

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            history = "\n".join(json.dumps(h)[:600] for h in self.history)
            raise AssertionError(
                f"panel state not reached in {timeout} s: {self.state}\nlast messages:\n{history}"
            ) from None


class SupervisorClient(AgentClient):
    async def panel(self) -> State:
        return await self._json("GET", "/api/panel")

    async def set_priority(self, line_id: int, priority: Any) -> dict[str, Any]:
        return await self._json(
            "POST", f"/api/panel/lines/{line_id}/priority", {"priority": priority}
        )

    async def move_agent(self, agent_id: int, line_ids: list[int]) -> dict[str, Any]:
        return await self._json(
            "POST", f"/api/panel/agents/{agent_id}/lines", {"line_ids": line_ids}
        )

    async def pause_agent(self, agent_id: int, reason: str | None = None) -> dict[str, Any]:
        body = {} if reason is None else {"reason": reason}
        return await self._json("POST", f"/api/panel/agents/{agent_id}/pause", body)

    async def unpause_agent(self, agent_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/api/panel/agents/{agent_id}/ready", {})

    async def campaign_status(self, campaign_id: int, status: str) -> dict[str, Any]:
        return await self._json(
            "POST", f"/api/panel/campaigns/{campaign_id}/status", {"status": status}
        )

    @asynccontextmanager
    async def panel_events(self) -> AsyncIterator[PanelStream]:
        async with self.event_stream("/panel/events") as resp:
            stream = PanelStream(resp)
            try:
                await stream.next()  # the snapshot
                yield stream
            finally:
                stream.close()


# --- supervisor audio and recordings (issue #17, web/audio.py) ---------------------------


async def listen(sup: SupervisorClient, call_id: int, mode: str) -> dict[str, Any]:
    """Listen, whisper or barge (``mode``) on a call from the panel."""
    return await sup._json("POST", f"/api/panel/calls/{call_id}/{mode}", {})


async def stop_listening(sup: SupervisorClient) -> dict[str, Any]:
    return await sup._json("POST", "/api/panel/listen/stop", {})


async def recordings_of(sup: SupervisorClient, call_id: int) -> list[dict[str, Any]]:
    return (await sup._get(f"/api/recordings?call_id={call_id}"))["recordings"]
