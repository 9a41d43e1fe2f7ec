"""The inbound Stasis app: callers wait in a holding bridge per line, agents are
rung and bridged to them (F-I3, F-I4, F-I7).

ARI has no queue API, so the queue *order* lives in the distributor (and the
database); Asterisk only holds the channels: each line's waiting callers sit
in the holding bridge ``cube-hold-<line>`` with music on hold, and a connected
call gets its own mixing bridge ``cube-call-<call>``. Bridge ids are
deterministic so that after a restart the same bridges are found again.

Stasis arguments set by the generated dialplan:

- ``inbound,<line_id>``: a caller on an inbound line;
- ``service,<line_id>,<client_id>,<hours>``: an answering-service caller;
- ``callback,<campaign_id>``: a caller who dialled an outbound campaign's caller ID;
  each of these three ends with the caller's presentation (``${CALLERID(pres)}``);
- ``agent,<call_id>``: the agent's phone, rung by us, answered;
- ``cb-agent,<call_id>`` / ``cb-customer,<call_id>``: a missed-call callback (F-I7).

This module translates ARI events into distributor calls and carries out
the distributor's telephony requests; it decides nothing itself. Every channel it
originates for a call is reported first (``Distributor.leg_originated``), and every
channel leaving the app goes to ``Distributor.channel_left``, which says what else to
hang up (``release``): so whichever side ends a call, no leg of it stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.channel_watch import LEG_GONE_TIMEOUT, ChannelWatch
from asterisk_cube.ari.supervisor import (
    AppSnapshot,
    AriSupervisor,
    connected_client,
    continue_in_dialplan,
    event_json,
    event_type,
)
from asterisk_cube.config import Settings
from asterisk_cube.core import trunk
from asterisk_cube.core.numbers import presented_number
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

CALLBACK_TONE = "sound:beep"  # distinct connection tone for customer callbacks (F-I3)


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status behind an asyncari error (it wraps httpx's), if any."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return response.status_code
        exc = exc.__cause__ or exc.__context__
    return None


# Where each kind of caller's Stasis arguments carry the caller's presentation
# (``${CALLERID(pres)}``: ARI's channel JSON has no presentation).
_PRESENTATION_ARG = {"inbound": 2, "service": 4, "callback": 2}


def caller_arrival(args: list[str], channel: dict) -> dict[str, Any]:
    """``Distributor.call_arrived``'s arguments for a caller: from its Stasis arguments
    (``inbound,<line>,<pres>``, ``service,<line>,<client>,<hours>,<pres>`` or
    ``callback,<campaign>,<pres>``) and its ARI channel JSON. A number the caller withholds
    (restricted presentation) is never passed on: the caller is ``anonymous``."""
    kind = args[0] if args else ""
    first = int(args[1]) if len(args) > 1 and args[1].isdigit() else None
    at = _PRESENTATION_ARG.get(kind, len(args))
    presentation = args[at] if at < len(args) else ""
    return {
        "line_id": first if kind != "callback" else None,
        "caller": presented_number((channel.get("caller") or {}).get("number", ""), presentation),
        "dialed": (channel.get("dialplan") or {}).get("exten", ""),
        "hours": args[3] if kind == "service" and len(args) > 3 else "",
        "campaign_id": first if kind == "callback" else None,
    }


def stasis_args(channel: dict) -> list[str]:
    """The Stasis arguments of a channel in the app, from its ARI JSON
    (``dialplan.app_data`` is ``<app>,<arg>,<arg>...``)."""
    data = (channel.get("dialplan") or {}).get("app_data") or ""
    return data.split(",")[1:] if data else []


def created_at(channel: dict) -> dt.datetime | None:
    """When the channel was created (ARI ``creationtime``, e.g. 2026-11-23T10:00:00.123+0100)."""
    with contextlib.suppress(ValueError, TypeError):
        return dt.datetime.strptime(channel.get("creationtime", ""), "%Y-%m-%dT%H:%M:%S.%f%z")
    return None


def hold_bridge_id(line_id: int | None) -> str:
    return f"cube-hold-{line_id if line_id is not None else 'none'}"


def call_bridge_id(call_id: int) -> str:
    return f"cube-call-{call_id}"


def consult_bridge_id(call_id: int) -> str:
    return f"cube-consult-{call_id}"


class InboundApp:
    """StasisHandler for inbound calls and the distributor's Telephony."""

    def __init__(
        self,
        settings: Settings,
        supervisor: AriSupervisor,
        distributor: Distributor,
        ring_timeout: int = 30,
    ) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.distributor = distributor
        self.ring_timeout = ring_timeout
        # Request/response correlation only (no call state: that is the distributor's):
        # an originated channel -> answered?, a playback -> finished, and a caller ->
        # resolved once it is answered and in its holding bridge.
        self._answered: dict[str, asyncio.Future[bool]] = {}
        self._playbacks: dict[str, asyncio.Future[None]] = {}
        self._settled: dict[str, asyncio.Future[None]] = {}
        # channels we originated (agent phones, forward targets, callback legs) until
        # Asterisk destroys them
        self._legs = ChannelWatch()
        self._bridges_ready: set[str] = set()
        # call/consult bridges that exist (created, or found on resync): only these are
        # destroyed, so a call without a consult sends no DELETE that gets a 404 (#19)
        self._bridges: set[str] = set()
        # bridges whose create is in flight: a release waits for it before its DELETE
        self._creating: dict[str, asyncio.Future[None]] = {}
        # /metrics: on_timing("arrival_to_originate" | "answer_to_bridged", seconds)
        self.on_timing: Callable[[str, float], None] | None = None
        # call recording (issue #17, audio/recorder.py): (call_id, bridge_id) once bridged
        self.on_bridged: Callable[[int, str], None] | None = None

    @property
    def client(self) -> Any:
        return connected_client(self.supervisor)

    # --------------------------------------------------------------- events

    async def on_event(self, event: Any, client: Any) -> None:
        raw = event_json(event)
        etype = event_type(event)
        channel = raw.get("channel") or {}
        channel_id = channel.get("id", "")
        if etype == "StasisStart":
            await self._stasis_start(raw, channel)
        elif etype == "StasisEnd":
            self._stasis_end(channel_id)
        elif etype == "ChannelDestroyed":
            self._resolve(self._answered.pop(channel_id, None), False)
            self._legs.destroyed(channel_id)
            self._legs.forget(channel_id)  # nothing waits for it any more
        elif etype == "PlaybackFinished":
            playback = raw.get("playback") or {}
            self._resolve(self._playbacks.pop(playback.get("id", ""), None), None)

    @staticmethod
    def _resolve(future: asyncio.Future | None, value: Any) -> None:
        if future is not None and not future.done():
            future.set_result(value)

    async def _stasis_start(self, raw: dict, channel: dict) -> None:
        args = [str(a) for a in raw.get("args") or ()]
        channel_id = channel.get("id", "")
        kind = args[0] if args else ""
        if kind in ("agent", "cb-agent", "cb-customer", "fwd"):
            answered = self._answered.pop(channel_id, None)
            if answered is None:  # rung before a restart: its call goes on without it
                log.info("agent_leg_orphaned", channel=channel_id, args=args)
                with contextlib.suppress(Exception):
                    await self.client.channels.hangup(channelId=channel_id)
                return
            self._resolve(answered, True)
            return
        if kind not in ("inbound", "service", "callback"):
            # Not ours (another dialplan's Stasis call): never strand it.
            log.warning("stasis_unknown_args", channel=channel_id, args=args)
            await continue_in_dialplan(self.client, channel_id)
            return
        arrival = caller_arrival(args, channel)
        # Queued (and maybe offered) at once, while the caller is answered and put on
        # music on hold: the two requests take 2-8 ms, the agent's phone rings for far
        # longer, and connect_agent waits for them before it bridges (see _settled).
        self._settled[channel_id] = asyncio.get_running_loop().create_future()
        try:
            self.distributor.call_arrived(channel_id, **arrival)
        finally:
            await self._settle(channel_id, arrival["line_id"])

    async def _settle(self, channel_id: str, line_id: int | None) -> None:
        """Answer the caller and move it into its line's holding bridge (music on hold);
        then a connect waiting for that (``_settled``) may go on."""
        client = self.client
        try:
            await client.channels.answer(channelId=channel_id)
            bridge_id = await self._holding_bridge(line_id)
            await client.bridges.addChannel(bridgeId=bridge_id, channel=channel_id)
        finally:
            self._resolve(self._settled.pop(channel_id, None), None)

    def _stasis_end(self, channel_id: str) -> None:
        # The distributor owns the call's lifecycle: it knows every leg of the call and
        # decides what else ends (its ``Release`` actions come back here as ``release``).
        self.distributor.channel_left(channel_id)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        """After (re)connecting: rebuild from the DB and what Asterisk still holds."""
        self._bridges_ready = {b for b in snapshot.bridge_ids if b.startswith("cube-hold-")}
        self._bridges |= set(snapshot.bridge_ids) - self._bridges_ready
        self._legs.missing(snapshot.channel_ids)  # gone meanwhile
        self.distributor.recover(set(snapshot.channel_ids))
        await self._adopt_unknown_callers(snapshot.channel_ids, client)

    async def _adopt_unknown_callers(self, channel_ids: Iterable[str], client: Any) -> None:
        """Callers in the app that the database does not know: their arrival was still in
        the write-behind journal when ``serve`` was killed. Asterisk still knows their
        Stasis arguments and when they came: queue them again, in that order."""
        d = self.distributor
        found = []
        for channel_id in channel_ids:
            if d.state.knows_channel(channel_id):
                continue
            try:
                channel = await client.channels.get(channelId=channel_id)
            except Exception:
                continue  # gone meanwhile
            raw = channel if isinstance(channel, dict) else getattr(channel, "json", {}) or {}
            args = stasis_args(raw)
            if not args or args[0] not in ("inbound", "service", "callback"):
                continue
            created = created_at(raw) or dt.datetime.now(dt.UTC)
            found.append((created, channel_id, caller_arrival(args, raw)))
        for created, channel_id, arrival in sorted(found, key=lambda f: f[:2]):
            d.call_arrived(channel_id, **arrival, queued_at=created)
            log.info("caller_adopted", channel=channel_id, **arrival)
            # It may have been killed before it was answered and put on hold.
            self.supervisor.spawn(self._settle_quietly(channel_id, arrival["line_id"]))

    async def _settle_quietly(self, channel_id: str, line_id: int | None) -> None:
        with contextlib.suppress(Exception):
            await self._settle(channel_id, line_id)

    # ------------------------------------------------------------- bridges

    async def _ensure_bridge(self, bridge_id: str, kind: str) -> None:
        """Create the bridge, or keep it if it exists (e.g. left by a previous serve).

        It counts as existing from the moment it is asked for, and a release while the
        create is in flight waits for it: a ``DELETE`` skipped, or one that overtook the
        create on another connection (404), would leave the bridge in Asterisk."""
        self._bridges.add(bridge_id)
        created = self._creating[bridge_id] = asyncio.get_running_loop().create_future()
        try:
            await self.client.bridges.createWithId(bridgeId=bridge_id, type=kind, name=bridge_id)
        except Exception as exc:
            if http_status(exc) != 409:
                self._bridges.discard(bridge_id)
                raise
            log.info("bridge_exists", bridge=bridge_id)
        finally:
            if self._creating.get(bridge_id) is created:
                del self._creating[bridge_id]
            created.set_result(None)

    async def _holding_bridge(self, line_id: int | None) -> str:
        bridge_id = hold_bridge_id(line_id)
        if bridge_id not in self._bridges_ready:
            await self._ensure_bridge(bridge_id, "holding")
            await self.client.bridges.startMoh(bridgeId=bridge_id, mohClass="default")
            self._bridges_ready.add(bridge_id)
        return bridge_id

    async def _destroy_bridge(self, bridge_id: str) -> None:
        creating = self._creating.get(bridge_id)
        if creating is not None:
            await asyncio.shield(creating)
        if bridge_id not in self._bridges:
            return
        self._bridges.discard(bridge_id)
        with contextlib.suppress(Exception):
            await self.client.bridges.destroy(bridgeId=bridge_id)

    async def _ring(
        self, endpoint: str, args: str, caller_id: str, channel_id: str | None = None
    ) -> str | None:
        """Originate to ``endpoint`` into our app; the channel id once answered, else None."""
        channel_id = channel_id or f"cube-{uuid.uuid4().hex[:16]}"
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bool] = loop.create_future()
        self._answered[channel_id] = answered
        self._legs.watch(channel_id)
        try:
            params = {"endpoint": endpoint, "app": self.settings.ari.app, "appArgs": args}
            await self.supervisor.originate(
                **trunk.outgoing(params, self.settings.node_name),  # a phone on another node
                channelId=channel_id,
                callerId=caller_id,
                timeout=self.ring_timeout,
            )
        except Exception as exc:
            self._answered.pop(channel_id, None)
            self._legs.forget(channel_id)
            log.warning("originate_failed", endpoint=endpoint, error=repr(exc))
            return None
        try:
            ok = await asyncio.wait_for(answered, self.ring_timeout + 5)
        except TimeoutError:
            ok = False
        finally:
            self._answered.pop(channel_id, None)
        if not ok:
            await self.hang_up_gone([channel_id])
            return None
        return channel_id

    async def _play(self, channel_id: str, media: str, timeout: float = 5.0) -> None:
        playback_id = f"cube-pb-{uuid.uuid4().hex[:12]}"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._playbacks[playback_id] = done
        try:
            await self.client.channels.playWithId(
                channelId=channel_id, playbackId=playback_id, media=media
            )
            await asyncio.wait_for(done, timeout)
        except Exception as exc:
            log.warning("playback_failed", channel=channel_id, media=media, error=repr(exc))
        finally:
            self._playbacks.pop(playback_id, None)

    # ------------------------------------------------------- Telephony API

    async def connect_agent(
        self, call_id: int, channel_id: str, endpoint: str, tone: bool
    ) -> str | None:
        call = self.distributor.state.call(call_id)
        caller = call.caller if call else ""
        # The same id is originated and told to the distributor, so a caller who hangs up
        # while the agent's phone rings stops it (the call's legs).
        agent_channel_id = f"cube-{uuid.uuid4().hex[:16]}"
        self.distributor.leg_originated(call_id, agent_channel_id)
        if self.on_timing is not None and call is not None:
            waited = self.distributor.now() - call.queued_at
            self.on_timing("arrival_to_originate", waited.total_seconds())
        agent_channel = await self._ring(
            endpoint, f"agent,{call_id}", f'"{caller}" <{caller}>', agent_channel_id
        )
        if agent_channel is None:
            return None
        answered = time.monotonic()
        try:
            if tone:
                await self._play(agent_channel, CALLBACK_TONE)
            settling = self._settled.get(channel_id)
            if settling is not None:  # the caller is still being put on hold
                await settling
            client = self.client
            bridge_id = call_bridge_id(call_id)
            await self._ensure_bridge(bridge_id, "mixing")
            both = f"{channel_id},{agent_channel}"
            try:  # Asterisk moves the caller out of its holding bridge itself (22: one
                # request instead of removeChannel + addChannel, issue #19)
                await client.bridges.addChannel(bridgeId=bridge_id, channel=both)
            except Exception:  # an Asterisk that will not move it: take it out first
                with contextlib.suppress(Exception):  # it may have left the holding bridge
                    await client.bridges.removeChannel(
                        bridgeId=hold_bridge_id(call.line_id if call else None),
                        channel=channel_id,
                    )
                await client.bridges.addChannel(bridgeId=bridge_id, channel=both)
            if self.on_timing is not None:
                self.on_timing("answer_to_bridged", time.monotonic() - answered)
            if self.on_bridged is not None:
                self.on_bridged(call_id, bridge_id)
        except BaseException:
            # never leave an answered agent leg behind; the agent is free once it is gone
            await self.hang_up_gone([agent_channel])
            raise
        return agent_channel

    async def hangup(self, channel_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.channels.hangup(channelId=channel_id)

    def leg_up(self, channel_id: str) -> bool:
        """A channel we originated that Asterisk still has (no ``ChannelDestroyed`` yet)."""
        return self._legs.up(channel_id)

    async def release(self, call_id: int, channels: list[str]) -> None:
        """Hang up the call's remaining legs (ringing or answered) and remove its bridges;
        return once the legs we originated (the agent's phone...) have left Asterisk."""
        await asyncio.gather(*(self.hangup(ch) for ch in channels))
        await self._destroy_bridge(call_bridge_id(call_id))
        await self._destroy_bridge(consult_bridge_id(call_id))
        await self._wait_gone(channels, call_id)

    async def hang_up_gone(self, channels: list[str]) -> None:
        """Hang up ``channels`` and return once those we originated have left Asterisk."""
        await asyncio.gather(*(self.hangup(ch) for ch in channels))
        await self._wait_gone(channels)

    async def _wait_gone(self, channels: list[str], call_id: int | None = None) -> None:
        """Wait for the ``ChannelDestroyed`` of these hung-up legs (no request: ``DELETE
        /channels`` returns before the leg is gone, the event says when it is), at most
        ``LEG_GONE_TIMEOUT`` s: a lost event never strands an agent."""
        lingering = await self._legs.wait(channels, LEG_GONE_TIMEOUT)
        if lingering:
            log.warning("agent_leg_lingers", call=call_id, channels=lingering)

    def callback_caller_id(self, line_number: str) -> str:
        """What the customer sees when called back: ``[dialplan] callback_caller_id`` if
        set, else the number of the line they called (never ``anonymous``)."""
        number = self.settings.dialplan.callback_caller_id or line_number
        return f'"{number}" <{number}>' if number else ""

    async def callback(
        self, call_id: int, endpoint: str, number: str, caller_id: str
    ) -> tuple[str, str] | None:
        """F-I7: ring the agent first, then the customer; bridge them. Returns both channels
        once bridged; the call then ends like any other (``Distributor.channel_left``)."""
        d = self.distributor
        agent_id = f"cube-{uuid.uuid4().hex[:16]}"
        if not d.leg_originated(call_id, agent_id):
            return None
        agent_channel = await self._ring(
            endpoint, f"cb-agent,{call_id}", f'"Callback" <{number}>', agent_id
        )
        if agent_channel is None:
            return None
        customer_id = f"cube-{uuid.uuid4().hex[:16]}"
        customer = None
        if d.leg_originated(call_id, customer_id):
            customer = await self._ring(
                self.dial_string(number),
                f"cb-customer,{call_id}",
                self.callback_caller_id(caller_id),
                customer_id,
            )
        if customer is None:
            await self.hang_up_gone([agent_channel])
            return None
        try:
            await self._ensure_bridge(call_bridge_id(call_id), "mixing")
            await self.client.bridges.addChannel(
                bridgeId=call_bridge_id(call_id), channel=f"{agent_channel},{customer}"
            )
        except Exception:
            await self.release(call_id, [agent_channel, customer])  # a leg left meanwhile
            return None
        if self.on_bridged is not None:
            self.on_bridged(call_id, call_bridge_id(call_id))
        return agent_channel, customer

    # ------------------------------------------- answering service: forward (F-S2)

    def dial_string(self, target: str) -> str:
        """A phone (``PJSIP/ext``) as is; a number through the configured outbound dial."""
        if "/" in target:
            return target
        return self.settings.dialplan.outbound_dial.replace("{number}", target.lstrip("+"))

    async def consult(
        self, call_id: int, caller_channel: str, agent_channel: str, target: str, ring: int
    ) -> str | None:
        client = self.client
        consult = consult_bridge_id(call_id)
        await self._ensure_bridge(consult, "mixing")
        # The caller waits alone in the call's bridge with music on hold; the agent
        # moves to the consultation bridge to announce the call.
        with contextlib.suppress(Exception):
            await client.channels.startMoh(channelId=caller_channel)
        with contextlib.suppress(Exception):
            await client.bridges.removeChannel(
                bridgeId=call_bridge_id(call_id), channel=agent_channel
            )
        await client.bridges.addChannel(bridgeId=consult, channel=agent_channel)
        saved, self.ring_timeout = self.ring_timeout, ring
        target_id = f"cube-{uuid.uuid4().hex[:16]}"
        self.distributor.leg_originated(call_id, target_id)  # hung up if the call ends
        try:
            target_channel = await self._ring(
                self.dial_string(target), f"fwd,{call_id}", "", target_id
            )
        finally:
            self.ring_timeout = saved
        if target_channel is not None:
            await client.bridges.addChannel(bridgeId=consult, channel=target_channel)
        return target_channel

    async def resume(self, call_id: int, caller_channel: str, agent_channel: str) -> None:
        client = self.client
        with contextlib.suppress(Exception):
            await client.bridges.removeChannel(
                bridgeId=consult_bridge_id(call_id), channel=agent_channel
            )
        await self._destroy_bridge(consult_bridge_id(call_id))
        with contextlib.suppress(Exception):
            await client.channels.stopMoh(channelId=caller_channel)
        await client.bridges.addChannel(bridgeId=call_bridge_id(call_id), channel=agent_channel)

    async def transfer(
        self, call_id: int, caller_channel: str, agent_channel: str, target_channel: str
    ) -> None:
        client = self.client
        with contextlib.suppress(Exception):
            await client.channels.stopMoh(channelId=caller_channel)
        with contextlib.suppress(Exception):
            await client.bridges.removeChannel(
                bridgeId=call_bridge_id(call_id), channel=caller_channel
            )
        await client.bridges.addChannel(bridgeId=consult_bridge_id(call_id), channel=caller_channel)
        await self._destroy_bridge(call_bridge_id(call_id))
        await self.hang_up_gone([agent_channel])  # the agent's part is done, once it is gone
