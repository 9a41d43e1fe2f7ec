"""What the dialer needs from the outside: Asterisk (``ari.outbound.OutboundApp``).

The distributor (``acd.distributor.Distributor``: the dialer pool and the outbound hooks)
and the database (a ``sessionmaker``) are the dialer's other two ports; they are used
through their own types."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class DialerTelephony(Protocol):
    """What the dialer needs from Asterisk (``ari.outbound.OutboundApp``)."""

    def new_channel_id(self, agent: bool = False) -> str: ...

    def endpoint_for(self, number: str) -> str: ...

    def gone(self, channel_id: str) -> asyncio.Future[None]: ...

    def forget(self, channel_id: str) -> None: ...

    async def dial_contact(
        self,
        call_id: int,
        channel_id: str,
        number: str,
        *,
        caller_id: str | None,
        timeout: float,
        amd: bool = False,
    ) -> Any: ...

    async def ring_agent(
        self,
        call_id: int,
        channel_id: str,
        endpoint: str,
        *,
        auto_answer: bool,
        timeout: float,
        caller_id: str = "",
    ) -> bool: ...

    async def bridge(self, call_id: int, channels: list[str]) -> None: ...

    async def open_bridge(self, call_id: int, channels: list[str]) -> None: ...

    async def join(self, call_id: int, channel_id: str) -> None: ...

    async def end_call(self, call_id: int) -> None: ...

    async def play(self, channel_id: str, media: str, timeout: float = 15.0) -> bool: ...

    async def start_tone(self, channel_id: str, tone: str = "tone:ring") -> str | None: ...

    async def stop_playback(self, playback_id: str | None) -> None: ...

    async def hangup(self, channel_id: str | None) -> None: ...

    async def wait_destroyed(self, channel_id: str | None, timeout: float = 2.0) -> bool: ...
