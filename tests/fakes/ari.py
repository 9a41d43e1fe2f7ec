"""The ARI supervisor as the inbound app uses it (``client``, ``spawn``, ``originate``), and a
client that records every REST operation."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeSupervisor:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.tasks: list[asyncio.Future] = []

    def spawn(self, coro: Any, name: str | None = None) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def originate(self, **params: Any) -> None:
        await self.client.channels.originate(**params)


class Recorder:
    """Every REST operation the app calls, as ``(resource.operation, params)``."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], name: str) -> None:
        self._calls, self._name = calls, name

    def __getattr__(self, op: str) -> Any:
        async def call(**params: Any) -> None:
            self._calls.append((f"{self._name}.{op}", params))

        return call


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.channels = Recorder(self.calls, "channels")
        self.bridges = Recorder(self.calls, "bridges")

    def destroyed(self) -> list[str]:
        return [p["bridgeId"] for op, p in self.calls if op == "bridges.destroy"]
