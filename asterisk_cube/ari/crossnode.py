"""Cross-node legs on the agent's node (issue #14): a leg from another node's Asterisk
arrives over the inter-node trunk in ``crossnode,<call>,<phone dial string>`` (the
generated context ``cube-from-nodes``); this app rings the agent's phone on its own
Asterisk (``crossnode-phone,<trunk leg>``), and when the phone answers, answers the trunk
leg and bridges the two in ``cube-xn-<trunk leg>``. The node that owns the call sees the
trunk leg as the agent's leg (answered = the agent answered) and bridges its caller with
it as with a local phone.

A dialer's agent leg (auto-answer) arrives with ``X-Cube-Auto-Answer: 1`` and the phone is
rung with the same auto-answer headers as a local one (``ari/outbound.AUTO_ANSWER``).

Whichever leg leaves, the other is hung up (:class:`asterisk_cube.core.trunk.Relays`):
the trunk carries a hang-up on either side to the other Asterisk, so the caller, the
agent's phone or a desk Hang up on either node ends every leg on both. This module only
translates ARI events; which channel goes with which is the pure ``Relays``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from asterisk_cube.ari.outbound import AUTO_ANSWER
from asterisk_cube.ari.supervisor import (
    AppSnapshot,
    AriSupervisor,
    connected_client,
    event_json,
    event_type,
)
from asterisk_cube.config import Settings
from asterisk_cube.core.trunk import CROSSNODE_ARG, PHONE_ARG, Relays
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

ARGS = (CROSSNODE_ARG, PHONE_ARG)  # the StasisRouter sends these StasisStarts here
BRIDGE_PREFIX = "cube-xn-"


def bridge_id(trunk_channel: str) -> str:
    return BRIDGE_PREFIX + trunk_channel


class CrossNodeApp:
    """StasisHandler for the trunk legs that other nodes send to this node's phones."""

    def __init__(self, settings: Settings, supervisor: AriSupervisor, ring_timeout: int = 30):
        self.settings = settings
        self.supervisor = supervisor
        self.ring_timeout = ring_timeout
        self.relays = Relays()
        self._arrived: dict[str, float] = {}  # trunk leg -> monotonic StasisStart
        # (seconds from the trunk leg's StasisStart to the agent's phone bridged with it)
        self.on_timing: Callable[[str, float], None] | None = None

    @property
    def client(self) -> Any:
        return connected_client(self.supervisor)

    async def on_event(self, event: Any, client: Any) -> None:
        raw = event_json(event)
        etype = event_type(event)
        channel = raw.get("channel") or {}
        channel_id = channel.get("id", "")
        if etype == "StasisStart":
            args = [str(a) for a in raw.get("args") or ()]
            if args and args[0] == CROSSNODE_ARG:
                await self._incoming(channel_id, args, channel)
            elif args and args[0] == PHONE_ARG:
                await self._phone_answered(channel_id)
        elif etype in ("StasisEnd", "ChannelDestroyed"):
            await self._left(channel_id)

    async def _incoming(self, trunk: str, args: list[str], channel: dict) -> None:
        call = args[1] if len(args) > 1 else ""
        dial = args[2] if len(args) > 2 else ""
        auto_answer = len(args) > 3 and args[3] == "1"  # a dialer's agent leg
        phone = f"cube-xp-{uuid.uuid4().hex[:16]}"
        self.relays.add(trunk, phone)  # before the originate: a hang-up meanwhile ends both
        self._arrived[trunk] = time.monotonic()
        log.info("crossnode_leg", trunk=trunk, call=call, phone=dial)
        caller = channel.get("caller") or {}
        name, number = caller.get("name", ""), caller.get("number", "")
        client = self.client
        with contextlib.suppress(Exception):
            await client.channels.ring(channelId=trunk)  # 180 Ringing to the other node
        try:
            await self.supervisor.originate(
                endpoint=dial,
                app=self.settings.ari.app,
                appArgs=f"{PHONE_ARG},{trunk}",
                channelId=phone,
                callerId=f'"{name or number}" <{number}>' if number else "",
                timeout=self.ring_timeout,
                **({"variables": dict(AUTO_ANSWER)} if auto_answer else {}),
            )
        except Exception as exc:
            log.warning("crossnode_originate_failed", trunk=trunk, phone=dial, error=repr(exc))
            await self._left(phone)

    async def _phone_answered(self, phone: str) -> None:
        relay = self.relays.get(phone)
        if relay is None:  # the trunk leg left while it rang
            await self._hangup(phone)
            return
        relay.answered = True
        client = self.client
        bridge = bridge_id(relay.trunk)
        try:
            await client.channels.answer(channelId=relay.trunk)
            await client.bridges.createWithId(bridgeId=bridge, type="mixing", name=bridge)
            await client.bridges.addChannel(bridgeId=bridge, channel=f"{relay.trunk},{phone}")
        except Exception as exc:
            log.warning("crossnode_bridge_failed", trunk=relay.trunk, error=repr(exc))
            await self._left(phone)
            return
        started = self._arrived.pop(relay.trunk, None)
        if started is not None and self.on_timing is not None:
            self.on_timing("crossnode_answer", time.monotonic() - started)
        log.info("crossnode_bridged", trunk=relay.trunk, phone=phone)

    async def _left(self, channel_id: str) -> None:
        relay = self.relays.get(channel_id)
        others = self.relays.left(channel_id)
        if relay is None:
            return
        self._arrived.pop(relay.trunk, None)
        for other in others:
            await self._hangup(other)
        with contextlib.suppress(Exception):
            await self.client.bridges.destroy(bridgeId=bridge_id(relay.trunk))

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.channels.hangup(channelId=channel_id)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        """After (re)connecting: pair again the legs still bridged in ``cube-xn-*``; a leg
        left alone (its partner went while we were away) is hung up."""
        paired: set[str] = set()
        for bridge in snapshot.bridge_ids:
            if not bridge.startswith(BRIDGE_PREFIX):
                continue
            trunk = bridge[len(BRIDGE_PREFIX) :]
            try:
                info = await client.bridges.get(bridgeId=bridge)
            except Exception:
                continue
            channels = [c for c in (info or {}).get("channels", ()) if c != trunk]
            if trunk in (info or {}).get("channels", ()) and len(channels) == 1:
                self.relays.add(trunk, channels[0]).answered = True
                paired |= {trunk, channels[0]}
            else:
                for channel in [*channels, trunk]:
                    await self._hangup(channel)
                with contextlib.suppress(Exception):
                    await client.bridges.destroy(bridgeId=bridge)
        log.info("crossnode_resync", legs=len(self.relays))
