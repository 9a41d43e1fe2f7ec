"""The fake telephony port the distributor's tests drive (acd.contract's Telephony)."""

from __future__ import annotations

import asyncio


class FakeTelephony:
    """Every agent's phone answers (``answer = False``: none does); records what it did."""

    def __init__(self) -> None:
        self.answer = True
        self.connected: list[tuple[int, str, bool]] = []
        self.hung_up: list[str] = []

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        await asyncio.sleep(0)
        if self.answer:
            self.connected.append((call_id, endpoint, tone))
            return f"agent-{call_id}"
        return None

    async def hangup(self, channel_id):
        self.hung_up.append(channel_id)

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here

    async def release(self, call_id, channels):
        self.hung_up.extend(channels)

    async def callback(self, call_id, endpoint, number, caller_id):
        return None
