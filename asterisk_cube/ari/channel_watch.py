"""Which of the channels we originated Asterisk has destroyed, and a bounded wait for it.

``DELETE /channels/{id}`` returns when the hang-up is requested, while the channel is still
in Asterisk (``GET /channels`` lists it). Its ``ChannelDestroyed`` says when it is gone:
the app stays subscribed to a channel it originated, so that event comes even after its
``StasisEnd``. An agent is given back only once the leg its phone had is gone, else its
next call would ring a phone still holding the last one. Used by ``ari.inbound`` (the
distributor's legs) and ``ari.outbound`` (the dialer's legs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

#: How long a hung-up leg we rang may take to leave Asterisk before the agent is given
#: back anyway (logged): a lost event never strands an agent. The ACD's releases
#: (``ari.inbound``) and the dialer's hand-backs (``ari.outbound.wait_destroyed``).
LEG_GONE_TIMEOUT = 2.0


class ChannelWatch:
    """Channel id -> a future resolved by that channel's ``ChannelDestroyed``."""

    def __init__(self) -> None:
        self._destroyed: dict[str, asyncio.Future[None]] = {}

    def watch(self, channel_id: str) -> None:
        """A channel we are about to originate: watched until ``forget``."""
        self._destroyed[channel_id] = asyncio.get_running_loop().create_future()

    def forget(self, channel_id: str) -> None:
        self._destroyed.pop(channel_id, None)

    def destroyed(self, channel_id: str) -> None:
        """Its ``ChannelDestroyed`` came (the entry stays until ``forget``)."""
        future = self._destroyed.get(channel_id)
        if future is not None and not future.done():
            future.set_result(None)

    def up(self, channel_id: str) -> bool:
        """A watched channel that Asterisk still has (no ``ChannelDestroyed`` yet)."""
        future = self._destroyed.get(channel_id)
        return future is not None and not future.done()

    def missing(self, alive: Iterable[str]) -> None:
        """After a (re)connect: watched channels not among ``alive`` (Asterisk's channels)
        were destroyed meanwhile, their event lost with the connection."""
        for channel_id in set(self._destroyed) - set(alive):
            self.destroyed(channel_id)
            self.forget(channel_id)

    async def wait(self, channels: Iterable[str], timeout: float) -> list[str]:
        """Wait for the ``ChannelDestroyed`` of those of ``channels`` we watch, at most
        ``timeout`` s: events only, no request (issue #19 counted requests per call).
        Returns the ones still up, given up on (forgotten: not waited for again)."""
        pending = {ch: f for ch in channels if (f := self._destroyed.get(ch)) is not None}
        waiting = [f for f in pending.values() if not f.done()]
        if not waiting:
            return []
        await asyncio.wait(waiting, timeout=timeout)
        lingering = [ch for ch, f in pending.items() if not f.done()]
        for ch in lingering:
            self.forget(ch)
        return lingering

    async def wait_gone(
        self, channel_id: str, timeout: float, exists: Callable[[str], Awaitable[bool]]
    ) -> bool:
        """Wait until Asterisk no longer has the channel: its ``ChannelDestroyed``, or
        ``exists`` (``GET /channels/{id}``) saying no: a channel that left Stasis may not
        send the event to the app. True once it is gone (or ``exists`` cannot be asked:
        ConnectionError); False if it is still there after ``timeout`` s."""
        destroyed = self._destroyed.get(channel_id)
        deadline = time.monotonic() + timeout
        while True:
            if destroyed is not None and destroyed.done():
                return True
            try:
                if not await exists(channel_id):
                    return True
            except ConnectionError:  # cannot be asked now (a resync hangs up ours)
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if destroyed is not None:
                await asyncio.wait({destroyed}, timeout=min(0.05, left))
            else:
                await asyncio.sleep(min(0.05, left))
