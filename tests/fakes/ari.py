"""The ARI supervisor as the inbound app uses it (``client``, ``spawn``, ``originate``)."""

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
