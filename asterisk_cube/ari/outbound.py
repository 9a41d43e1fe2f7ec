"""The outbound Stasis app: the dialer's telephony over ARI (F-D3, F-D4).

It originates, watches and bridges channels; the dialer (``asterisk_cube.dialer.service``)
decides what to do with them. Channel ids are chosen by us so that every event can be
matched to a request, also ones that arrive before the originate returns:

- ``cube-d-<hex>``: a contact leg, originated into the app with ``dial,<call_id>`` (it
  enters Stasis when the contact answers);
- ``cube-da-<hex>``: an agent leg with ``dial-agent,<call_id>``. Power and predictive ask
  the phone to answer by itself (``Call-Info: answer-after=0`` and
  ``Alert-Info: info=alert-autoanswer``, the headers softphones and desk phones honour);
  preview rings it normally;
- answering-machine detection (optional per campaign): the answered contact leg is sent to
  the generated ``cube-dialer,amd,1`` (``AMD()``), which brings it back with
  ``dial-amd,<call_id>,<AMDSTATUS>,<AMDCAUSE>``; the leg is subscribed explicitly so a
  hang-up during detection is still seen;
- a call gets a mixing bridge ``cube-dial-<call_id>``: power/predictive make it with the
  contact in it as soon as the contact answered (``open_bridge``), so the agent's answer
  is one request (``join``); preview makes it with both legs once the contact answered.

A channel that never answers is destroyed without entering Stasis; its
``ChannelDestroyed`` carries the hang-up cause (17 busy, 19 no answer, ...), which ends
the wait. After a reconnect, channels we no longer have are treated as gone and our
channels we do not know (left over from before a restart) are hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from asterisk_cube.ari.channel_watch import LEG_GONE_TIMEOUT, ChannelWatch
from asterisk_cube.ari.supervisor import (
    AppSnapshot,
    AriSupervisor,
    connected_client,
    event_json,
    event_type,
)
from asterisk_cube.config import Settings
from asterisk_cube.core import trunk
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

OUTBOUND_ARGS = ("dial", "dial-agent", "dial-amd")
CONTACT_PREFIX = "cube-d-"
AGENT_PREFIX = "cube-da-"
AMD_CONTEXT = "cube-dialer"
AMD_EXTEN = "amd"
AUTO_ANSWER = {
    "PJSIP_HEADER(add,Call-Info)": "<sip:127.0.0.1>;answer-after=0",
    "PJSIP_HEADER(add,Alert-Info)": "<http://127.0.0.1>;info=alert-autoanswer;delay=0",
}


async def within(future: asyncio.Future, timeout: float) -> Any:
    """``future``'s result if it completes within ``timeout`` s, else TimeoutError. Unlike
    ``asyncio.wait_for`` on Python 3.11 it never swallows a cancellation of the caller."""
    done, _ = await asyncio.wait({future}, timeout=max(0.0, timeout))
    if not done:
        raise TimeoutError
    return future.result()


async def _exists(client: Any, channel_id: str) -> bool:
    """Does Asterisk still have this channel (``GET /channels/{id}``)?"""
    try:
        await client.channels.get(channelId=channel_id)
    except Exception:  # 404, or Asterisk gone again: treat it as lost
        return False
    return True


def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status of a failed ARI request (asyncari wraps httpx's error, without it)."""
    seen = 0
    while exc is not None and seen < 5:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


DIAL_BRIDGE_PREFIX = "cube-dial-"
#: an agent's phone as one endpoint (``PJSIP/agent01``), not a dial string
_PLAIN_ENDPOINT = re.compile(r"([A-Za-z]+)/([^/@:;,&]+)")


def bridge_id(call_id: int) -> str:
    return f"{DIAL_BRIDGE_PREFIX}{call_id}"


@dataclass
class DialResult:
    """How a contact dial ended: answered (``channel_id`` is in the app) or not (``cause``:
    the Q.850 hang-up cause, ``error``: the originate itself failed)."""

    answered: bool
    channel_id: str
    cause: int | None = None
    ring_seconds: float = 0.0
    amd_status: str | None = None
    amd_cause: str | None = None
    error: str | None = None


class OutboundApp:
    """StasisHandler for the dialer's channels and the dialer's telephony."""

    def __init__(self, settings: Settings, supervisor: AriSupervisor | None) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self._answered: dict[str, asyncio.Future[tuple]] = {}  # channel -> (ok, cause, args)
        self._gone: dict[str, asyncio.Future[None]] = {}
        self._legs = ChannelWatch()  # which of ours Asterisk destroyed
        self._amd: set[str] = set()  # channels away in the AMD dialplan
        self._playbacks: dict[str, asyncio.Future[bool]] = {}
        self._known: set[str] = set()
        self._originating: set[str] = set()  # originate request not answered yet
        self._bridges: set[str] = set()  # call bridges this process made and not ended
        self.on_bridged: Any = None  # call recording (issue #17): (call_id, bridge_id)

    @property
    def client(self) -> Any:
        return connected_client(self.supervisor)

    @property
    def connected(self) -> bool:
        return bool(self.supervisor and self.supervisor.connected)

    # --------------------------------------------------------------- events

    async def on_event(self, event: Any, client: Any) -> None:
        raw = event_json(event)
        etype = event_type(event)
        channel_id = (raw.get("channel") or {}).get("id", "")
        if etype == "StasisStart":
            args = [str(a) for a in raw.get("args") or ()]
            if args and args[0] in OUTBOUND_ARGS:
                self._amd.discard(channel_id)
                self._resolve(self._answered.get(channel_id), (True, None, args))
        elif etype == "StasisEnd":
            if channel_id not in self._amd:
                self._resolve(self._gone.get(channel_id), None)
        elif etype == "ChannelDestroyed":
            cause = raw.get("cause")
            self._amd.discard(channel_id)
            self._resolve(self._answered.get(channel_id), (False, cause, []))
            self._resolve(self._gone.get(channel_id), None)
            self._legs.destroyed(channel_id)
            self._known.discard(channel_id)
        elif etype == "PlaybackFinished":
            playback = raw.get("playback") or {}
            done = playback.get("state") != "failed"
            self._resolve(self._playbacks.pop(playback.get("id", ""), None), done)

    @staticmethod
    def _resolve(future: asyncio.Future | None, value: Any) -> None:
        if future is not None and not future.done():
            future.set_result(value)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        """After a (re)connect: ours that Asterisk lost are gone; strangers are hung up.

        A channel of ours missing from the snapshot may still exist: a dial rings outside
        the app until it is answered, and a dial started while the snapshot was being read
        (the dialer dials as soon as ARI connects) is not in it, nor perhaps in Asterisk
        yet while its originate request is on its way. Only one Asterisk does not know at
        all, once asked, is gone: ending the others here logged a ringing contact as not
        answered (and then its answer met nobody)."""
        alive = set(snapshot.channel_ids)
        for channel_id in list(self._known):
            if channel_id in alive or channel_id in self._originating:
                continue
            if not await _exists(client, channel_id):
                self._resolve(self._answered.get(channel_id), (False, None, []))
                self._resolve(self._gone.get(channel_id), None)
                self._known.discard(channel_id)
        for channel_id in alive - self._known:
            if channel_id.startswith((CONTACT_PREFIX, AGENT_PREFIX)):
                log.info("dialer_stale_channel_hangup", channel=channel_id)
                await self.hangup(channel_id)
        # A call bridge this process did not make is a previous serve's: its legs are
        # hung up just above (or already gone), so it would stay in Asterisk for good.
        for stale in set(snapshot.bridge_ids) - self._bridges:
            if stale.startswith(DIAL_BRIDGE_PREFIX):
                log.info("dialer_stale_bridge_destroy", bridge=stale)
                with contextlib.suppress(Exception):
                    await client.bridges.destroy(bridgeId=stale)

    # ------------------------------------------------------------ requests

    def new_channel_id(self, agent: bool = False) -> str:
        return (AGENT_PREFIX if agent else CONTACT_PREFIX) + uuid.uuid4().hex[:16]

    def endpoint_for(self, number: str) -> str:
        return self.settings.dialplan.outbound_dial.replace("{number}", number.lstrip("+"))

    def gone(self, channel_id: str) -> asyncio.Future[None]:
        """Resolves when the channel leaves (hang-up); done at once for an unknown channel."""
        future = self._gone.get(channel_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
        return future

    def _watch(self, channel_id: str) -> asyncio.Future[tuple]:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[tuple] = loop.create_future()
        self._answered[channel_id] = answered
        self._gone[channel_id] = loop.create_future()
        self._legs.watch(channel_id)
        self._known.add(channel_id)
        return answered

    def forget(self, channel_id: str) -> None:
        """The dialer is done with this channel (after it left)."""
        self._answered.pop(channel_id, None)
        self._gone.pop(channel_id, None)
        self._legs.forget(channel_id)
        self._amd.discard(channel_id)

    async def _originate(self, channel_id: str, endpoint: str, args: str, **extra: Any) -> str:
        """Originate into our app; returns '' or the error."""
        self._originating.add(channel_id)
        try:
            params = {"endpoint": endpoint, "app": self.settings.ari.app, "appArgs": args}
            await self.client.channels.originate(
                **trunk.outgoing({**params, **extra}, self.settings.node_name),
                channelId=channel_id,
            )
        except Exception as exc:
            log.warning("dialer_originate_failed", endpoint=endpoint, error=repr(exc)[:200])
            return repr(exc)[:200] or "originate failed"
        finally:
            self._originating.discard(channel_id)
        return ""

    async def dial_contact(
        self,
        call_id: int,
        channel_id: str,
        number: str,
        *,
        caller_id: str | None,
        timeout: float,
        amd: bool = False,
    ) -> DialResult:
        """Dial the contact; return once it answered (and AMD decided) or the dial ended."""
        answered = self._watch(channel_id)
        started = time.monotonic()
        extra: dict[str, Any] = {
            "timeout": max(1, round(timeout)),
            "variables": {"CUBE_CALL": str(call_id)},
        }
        if caller_id:
            extra["callerId"] = caller_id
        error = await self._originate(
            channel_id, self.endpoint_for(number), f"dial,{call_id}", **extra
        )
        if error:
            self._resolve(self._gone.get(channel_id), None)
            return DialResult(False, channel_id, error=error)
        try:
            ok, cause, _args = await within(answered, timeout + 10)
        except TimeoutError:  # events lost: make sure it is over
            await self.hangup(channel_id)
            return DialResult(False, channel_id, ring_seconds=time.monotonic() - started)
        ring = time.monotonic() - started
        if not ok:
            return DialResult(False, channel_id, cause=cause, ring_seconds=ring)
        if not amd:
            return DialResult(True, channel_id, ring_seconds=ring)
        return await self._detect_machine(call_id, channel_id, ring)

    async def _detect_machine(self, call_id: int, channel_id: str, ring: float) -> DialResult:
        answered = asyncio.get_running_loop().create_future()
        self._answered[channel_id] = answered
        self._amd.add(channel_id)
        client = self.client
        try:
            await client.applications.subscribe(
                applicationName=self.settings.ari.app, eventSource=f"channel:{channel_id}"
            )
            await client.channels.continueInDialplan(
                channelId=channel_id, context=AMD_CONTEXT, extension=AMD_EXTEN, priority=1
            )
            ok, _cause, args = await within(answered, 15)
        except Exception as exc:
            log.warning("dialer_amd_failed", channel=channel_id, error=repr(exc)[:200])
            self._amd.discard(channel_id)
            return DialResult(True, channel_id, ring_seconds=ring, amd_status="NOTSURE")
        if not ok:
            return DialResult(False, channel_id, cause=16, ring_seconds=ring)
        status = args[2] if len(args) > 2 else "NOTSURE"
        cause = args[3] if len(args) > 3 else ""
        return DialResult(True, channel_id, ring_seconds=ring, amd_status=status, amd_cause=cause)

    async def ring_agent(
        self,
        call_id: int,
        channel_id: str,
        endpoint: str,
        *,
        auto_answer: bool,
        timeout: float,
        caller_id: str = "",
    ) -> bool:
        """Ring an agent's phone into the app; True once it answered within ``timeout``
        seconds (else the leg is hung up). A phone that still has a channel in Asterisk
        (its last call's leg hanging up) is rung once that is gone, within ``timeout``;
        False, not rung, if it is not."""
        deadline = time.monotonic() + timeout
        if not await self._phone_free(endpoint, deadline):
            log.warning("dialer_agent_phone_busy", call=call_id, endpoint=endpoint)
            return False
        answered = self._watch(channel_id)
        extra: dict[str, Any] = {"timeout": max(1, int(deadline - time.monotonic() + 0.999))}
        if caller_id:
            extra["callerId"] = caller_id
        if auto_answer:
            extra["variables"] = dict(AUTO_ANSWER)
        error = await self._originate(channel_id, endpoint, f"dial-agent,{call_id}", **extra)
        if error:
            self._resolve(self._gone.get(channel_id), None)
            return False
        try:
            ok, _cause, _args = await within(answered, deadline - time.monotonic())
        except TimeoutError:
            ok = False
        if not ok:
            await self.hangup(channel_id)
        return ok

    async def _phone_free(self, endpoint: str, deadline: float) -> bool:
        """Has the agent's phone (a plain ``TECH/resource`` endpoint) no channel in
        Asterisk (``GET /endpoints/{tech}/{resource}``: ``channel_ids``), or none left by
        ``deadline``? One request when it is free. The last call's leg of an agent given
        back at once (an inbound call ended with no wrap-up: the agent is ready before its
        leg's hang-up is even sent) would otherwise be on the phone with the new one. An
        endpoint it cannot ask about (a dial string, ARI not answering) counts as free."""
        found = _PLAIN_ENDPOINT.fullmatch(endpoint)
        if found is None:
            return True
        while True:
            try:
                snapshot = await self.client.endpoints.get(
                    tech=found.group(1), resource=found.group(2)
                )
            except Exception:
                return True
            if not (isinstance(snapshot, dict) and snapshot.get("channel_ids")):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.02, left))

    async def wait_destroyed(
        self, channel_id: str | None, timeout: float = LEG_GONE_TIMEOUT
    ) -> bool:
        """Wait until Asterisk no longer has the channel (hung up just before): its
        ``ChannelDestroyed``, or ``GET /channels/{id}`` answering 404 (a channel that left
        Stasis may not send the event to the app). True once it is gone; False if it is
        still there after ``timeout`` s.

        ``DELETE /channels/{id}`` returns when the hang-up is requested: the channel is
        still in Asterisk (``GET /channels`` lists it) while it hangs up. The dialer waits
        for this before it gives the agent back, so that the agent's phone never has its
        previous leg and the next call's at once."""
        if not channel_id:
            return True
        return await self._legs.wait_gone(channel_id, timeout, lambda ch: _exists(self.client, ch))

    async def bridge(self, call_id: int, channels: list[str]) -> None:
        """The call's mixing bridge with both parties (preview: two requests once the
        contact answered)."""
        await self.open_bridge(call_id, channels)
        self._bridged(call_id)

    async def open_bridge(self, call_id: int, channels: list[str]) -> None:
        """Make the call's mixing bridge with ``channels`` in it (power/predictive: the
        answered contact, while its agent is found and rung), so that the agent's answer
        costs one request (``join``). Ended by ``end_call``, once."""
        bid = bridge_id(call_id)
        client = self.client
        self._bridges.add(bid)
        await client.bridges.createWithId(bridgeId=bid, type="mixing", name=bid)
        await client.bridges.addChannel(bridgeId=bid, channel=",".join(channels))

    async def join(self, call_id: int, channel_id: str) -> None:
        """Add the agent's leg to the call's bridge made by ``open_bridge``: bridged."""
        await self.client.bridges.addChannel(bridgeId=bridge_id(call_id), channel=channel_id)
        self._bridged(call_id)

    def _bridged(self, call_id: int) -> None:
        if self.on_bridged is not None:  # call recording (issue #17)
            self.on_bridged(call_id, bridge_id(call_id))

    async def end_call(self, call_id: int) -> None:
        """Destroy the call's bridge, if this process made one and has not destroyed it
        yet: every path that ends a call may call it, Asterisk gets one ``DELETE``."""
        bid = bridge_id(call_id)
        if bid not in self._bridges:
            return
        self._bridges.discard(bid)
        with contextlib.suppress(Exception):
            await self.client.bridges.destroy(bridgeId=bid)

    async def play(self, channel_id: str, media: str, timeout: float = 15.0) -> bool:
        """Play ``media`` to the channel; True if it played to the end."""
        playback_id = f"cube-pb-{uuid.uuid4().hex[:12]}"
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._playbacks[playback_id] = done
        gone = self.gone(channel_id)
        try:
            await self.client.channels.playWithId(
                channelId=channel_id, playbackId=playback_id, media=media
            )
            waited: set[asyncio.Future[Any]] = {done, gone}
            finished, _ = await asyncio.wait(
                waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            played = done in finished and done.result()
            if done in finished and not played and not await _exists(self.client, channel_id):
                # failed because the channel hung up during it: its StasisEnd can come
                # seconds later under load (the e2e day test), Asterisk already knows
                self._resolve(self._gone.get(channel_id), None)
            return played
        except Exception as exc:
            status = http_status(exc)
            if status in (404, 409):  # not found / not in the app: the channel left us
                self._resolve(self._gone.get(channel_id), None)
            log.warning(
                "dialer_playback_failed",
                channel=channel_id,
                media=media,
                status=status,
                error=repr(exc),
            )
            return False
        finally:
            self._playbacks.pop(playback_id, None)

    async def start_tone(self, channel_id: str, tone: str = "tone:ring") -> str | None:
        """Ringback to an agent waiting for its contact (stop with ``stop_playback``)."""
        playback_id = f"cube-pb-{uuid.uuid4().hex[:12]}"
        try:
            await self.client.channels.playWithId(
                channelId=channel_id, playbackId=playback_id, media=tone
            )
        except Exception:
            return None
        return playback_id

    async def stop_playback(self, playback_id: str | None) -> None:
        if playback_id:
            with contextlib.suppress(Exception):
                await self.client.playbacks.stop(playbackId=playback_id)

    async def hangup(self, channel_id: str | None) -> None:
        if channel_id:
            with contextlib.suppress(Exception):
                await self.client.channels.hangup(channelId=channel_id)
