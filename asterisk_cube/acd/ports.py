"""What the distributor needs from the outside, as ports: Asterisk (``Telephony``,
implemented by ``ari.inbound.InboundApp``).

The distributor never imports an adapter; the ARI adapter is handed in by ``wiring``."""

from __future__ import annotations

from typing import Protocol


class Telephony(Protocol):
    """What the distributor needs from Asterisk (implemented by ``ari.inbound``)."""

    async def connect_agent(
        self, call_id: int, channel_id: str, endpoint: str, tone: bool
    ) -> str | None:
        """Ring the agent's phone; on answer bridge it with the caller (after a
        connection tone for customer callbacks). Returns the agent's channel id,
        or None if the agent did not answer."""

    async def hangup(self, channel_id: str) -> None: ...

    def leg_up(self, channel_id: str) -> bool:
        """Whether Asterisk still has this channel that we rang (its ``ChannelDestroyed``
        has not come yet): the agent is given back only once its leg is gone."""
        ...

    async def release(self, call_id: int, channels: list[str]) -> None:
        """The call is over (or one leg left): hang up ``channels`` (ringing or answered)
        and remove the call's bridges. ``Distributor`` says which channels
        (``LiveCall.legs``). Returns once the hung-up legs it rang (the agent's phone...)
        have left Asterisk, or after a bounded wait: the agent is given back only then."""

    async def callback(
        self, call_id: int, endpoint: str, number: str, caller_id: str
    ) -> tuple[str, str] | None:
        """F-I7: ring the agent first, then the customer (showing ``caller_id``), and bridge
        them. Returns ``(agent channel, customer channel)`` once bridged, else None (the
        legs it made are hung up). Each originated leg is first reported with
        ``Distributor.leg_originated``."""

    async def consult(
        self, call_id: int, caller_channel: str, agent_channel: str, target: str, ring: int
    ) -> str | None:
        """F-S2: hold the caller, ring ``target`` and bridge it with the agent (who
        announces the call). Returns the target's channel, or None if it did not answer."""

    async def resume(self, call_id: int, caller_channel: str, agent_channel: str) -> None:
        """Back from a consultation: the agent talks to the caller again."""

    async def transfer(
        self, call_id: int, caller_channel: str, agent_channel: str, target_channel: str
    ) -> None:
        """Connect the caller with the consulted target; the agent's leg ends. Returns once
        that leg has left Asterisk (bounded wait)."""
