"""Listen, whisper and barge on a connected call (F-M3), over ARI, no dialplan ChanSpy.

A supervisor asks from the panel; the product rings the supervisor's phone (the
account's endpoint: a desk phone or the browser phone, any endpoint Asterisk can dial)
into the Stasis app (``sup,<session>``, channel ``cube-sup-<hex>``) and, once it
answered, connects it:

- **listen**: a snoop channel on the agent's leg (``POST /channels/{agent}/snoop``,
  ``spy=both``: what the agent hears, i.e. the caller, and what the agent says), in a
  mixing bridge ``cube-listen-<session>`` with the supervisor's channel. Nobody hears
  the supervisor;
- **whisper**: the same snoop with ``whisper=out``: the supervisor's audio is mixed into
  what goes *out to* the agent's phone. The agent hears the supervisor, the caller does not;
- **barge**: the supervisor's channel joins the call's own mixing bridge (found with
  ``GET /bridges``: the one holding the agent's leg): all three hear each other.

A second action by the same supervisor on the same call switches mode on the phone that
is already connected; on another call it ends the first session. A session ends (its
snoop, bridge and the supervisor's channel hung up or removed, an ``audit_log`` row
``listen_end``) when the supervisor hangs up or presses Stop, when either leg of the
call leaves the app, or after a reconnect to ARI (the session's channels are hung up:
their state was in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asterisk_cube.logs import get_logger

log = get_logger(__name__)

MODES = ("listen", "whisper", "barge")
SUP_PREFIX = "cube-sup-"
SNOOP_PREFIX = "cube-snoop-"
BRIDGE_PREFIX = "cube-listen-"
RING_TIMEOUT = 30
REQUEST_TIMEOUT = 10.0


class ListenRefused(Exception):
    """``reason`` is one of the desk's refusal keys (illegal_state, not_found, failed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class ListenSession:
    id: str
    supervisor: str  # username
    supervisor_id: int | None
    call_id: int
    mode: str
    endpoint: str
    caller_channel: str
    agent_channel: str
    sup_channel: str = ""
    snoop_channel: str | None = None
    bridge_id: str | None = None  # the listen bridge, or the call's bridge when barging
    answered: bool = False
    ended: bool = False
    end_reason: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "call_id": self.call_id,
            "mode": self.mode,
            "supervisor": self.supervisor,
            "supervisor_channel": self.sup_channel,
            "snoop_channel": self.snoop_channel,
            "bridge": self.bridge_id,
            "answered": self.answered,
            "ended": self.ended,
        }


@dataclass(frozen=True)
class CallLegs:
    """What a session needs of a connected call."""

    caller_channel: str
    agent_channel: str


class Listening:
    def __init__(
        self,
        client: Callable[[], Any],
        app: str,
        call_legs: Callable[[int], CallLegs | None],
        *,
        originate: Callable[..., Any] | None = None,
        on_end: Callable[[ListenSession], None] | None = None,
        ring_timeout: int = RING_TIMEOUT,
    ) -> None:
        self._client = client
        self.app = app
        self.call_legs = call_legs
        self._originate = originate
        self.on_end = on_end
        self.ring_timeout = ring_timeout
        self.sessions: dict[str, ListenSession] = {}
        self.by_supervisor: dict[str, str] = {}
        self._started: dict[str, asyncio.Future[bool]] = {}  # channel -> in Stasis / gone
        self.started_total = 0

    # ------------------------------------------------------------------ actions

    async def start(
        self, call_id: int, mode: str, *, supervisor: str, supervisor_id: int | None, endpoint: str
    ) -> ListenSession:
        if mode not in MODES:
            raise ListenRefused("invalid", f"mode must be one of {', '.join(MODES)}")
        legs = self.call_legs(call_id)
        if legs is None:
            raise ListenRefused("illegal_state", f"call {call_id} is not connected to an agent")
        current = self.session_of(supervisor)
        if current is not None and current.call_id == call_id and current.answered:
            await self._detach(current)
            current.mode = mode
            await self._attach(current)
            self.started_total += 1
            return current
        if current is not None:
            await self.stop(current, "switched")
        session = ListenSession(
            id=uuid.uuid4().hex[:12],
            supervisor=supervisor,
            supervisor_id=supervisor_id,
            call_id=call_id,
            mode=mode,
            endpoint=endpoint,
            caller_channel=legs.caller_channel,
            agent_channel=legs.agent_channel,
        )
        session.sup_channel = f"{SUP_PREFIX}{session.id}"
        self.sessions[session.id] = session
        self.by_supervisor[supervisor] = session.id
        try:
            await self._ring(session)
            if self.call_legs(call_id) is None:
                raise ListenRefused("illegal_state", f"call {call_id} ended meanwhile")
            await self._attach(session)
        except ListenRefused as exc:
            await self.stop(session, exc.reason)
            raise
        except Exception as exc:
            log.warning("listen_failed", call=call_id, mode=mode, error=repr(exc))
            await self.stop(session, "failed")
            raise ListenRefused("failed", "could not connect your phone to the call") from None
        self.started_total += 1
        log.info("listen_started", call=call_id, mode=mode, by=supervisor, session=session.id)
        return session

    def session_of(self, supervisor: str) -> ListenSession | None:
        sid = self.by_supervisor.get(supervisor)
        session = self.sessions.get(sid) if sid else None
        return session if session is not None and not session.ended else None

    async def stop(self, session: ListenSession, reason: str) -> None:
        """End the session: every channel and bridge it made goes. Idempotent."""
        if session.ended:
            return
        session.ended = True
        session.end_reason = reason
        self.sessions.pop(session.id, None)
        if self.by_supervisor.get(session.supervisor) == session.id:
            self.by_supervisor.pop(session.supervisor, None)
        with contextlib.suppress(Exception):
            await self._detach(session)
        await self._hangup(session.sup_channel)
        session.done.set()
        log.info("listen_ended", call=session.call_id, session=session.id, reason=reason)
        if self.on_end is not None:
            try:
                self.on_end(session)
            except Exception as exc:
                log.warning("listen_audit_failed", error=repr(exc))

    # ---------------------------------------------------------------- plumbing

    async def _ring(self, session: ListenSession) -> None:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bool] = loop.create_future()
        self._started[session.sup_channel] = answered
        params = {
            "endpoint": session.endpoint,
            "app": self.app,
            "appArgs": f"sup,{session.id}",
            "channelId": session.sup_channel,
            "callerId": f'"Call {session.call_id}" <{session.call_id}>',
            "timeout": self.ring_timeout,
        }
        try:
            if self._originate is not None:
                await self._originate(**params)
            else:
                await self._client().channels.originate(**params)
            ok = await asyncio.wait_for(answered, self.ring_timeout + 5)
        except TimeoutError:
            ok = False
        finally:
            self._started.pop(session.sup_channel, None)
        if not ok:
            raise ListenRefused("failed", f"your phone {session.endpoint} did not answer")
        session.answered = True

    async def _attach(self, session: ListenSession) -> None:
        client = self._client()
        if session.mode == "barge":
            bridge = await self._call_bridge(client, session.agent_channel)
            if bridge is None:
                raise ListenRefused("illegal_state", f"call {session.call_id} has no bridge")
            session.bridge_id = bridge
            await client.bridges.addChannel(bridgeId=bridge, channel=session.sup_channel)
            return
        snoop_id = f"{SNOOP_PREFIX}{uuid.uuid4().hex[:12]}"
        in_app: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._started[snoop_id] = in_app
        try:
            await client.channels.snoopChannelWithId(
                channelId=session.agent_channel,
                snoopId=snoop_id,
                app=self.app,
                appArgs=f"snoop,{session.id}",
                spy="both",
                whisper="out" if session.mode == "whisper" else "none",
            )
            session.snoop_channel = snoop_id
            if not await asyncio.wait_for(in_app, REQUEST_TIMEOUT):
                raise ListenRefused("illegal_state", "the agent's leg is gone")
        finally:
            self._started.pop(snoop_id, None)
        bridge = f"{BRIDGE_PREFIX}{session.id}"
        await client.bridges.createWithId(bridgeId=bridge, type="mixing", name=bridge)
        session.bridge_id = bridge
        await client.bridges.addChannel(
            bridgeId=bridge, channel=f"{session.sup_channel},{snoop_id}"
        )

    async def _detach(self, session: ListenSession) -> None:
        client = self._client()
        if session.snoop_channel:
            snoop, session.snoop_channel = session.snoop_channel, None
            await self._hangup(snoop)
        bridge, session.bridge_id = session.bridge_id, None
        if bridge is None:
            return
        if bridge.startswith(BRIDGE_PREFIX):
            with contextlib.suppress(Exception):
                await client.bridges.destroy(bridgeId=bridge)
        else:  # barging: leave the call's bridge to the call
            with contextlib.suppress(Exception):
                await client.bridges.removeChannel(bridgeId=bridge, channel=session.sup_channel)

    @staticmethod
    async def _call_bridge(client: Any, agent_channel: str) -> str | None:
        for bridge in await client.bridges.list():
            raw = bridge if isinstance(bridge, dict) else getattr(bridge, "json", {}) or {}
            if agent_channel in (raw.get("channels") or ()):
                return raw.get("id")
        return None

    async def _hangup(self, channel_id: str | None) -> None:
        if not channel_id:
            return
        with contextlib.suppress(Exception):
            await self._client().channels.hangup(channelId=channel_id)

    # ------------------------------------------------------------------ events

    def owns(self, channel_id: str) -> bool:
        return channel_id.startswith((SUP_PREFIX, SNOOP_PREFIX))

    def on_stasis_start(self, channel_id: str) -> None:
        future = self._started.get(channel_id)
        if future is not None and not future.done():
            future.set_result(True)

    def channel_gone(self, channel_id: str, spawn: Callable[[Any], Any]) -> None:
        """A channel left the app: a session's own channel, or a leg of a listened call."""
        future = self._started.get(channel_id)
        if future is not None and not future.done():
            future.set_result(False)
        for session in list(self.sessions.values()):
            if session.ended:
                continue
            if channel_id in (session.caller_channel, session.agent_channel):
                spawn(self.stop(session, "call_ended"))
            elif channel_id == session.sup_channel and session.answered:
                # (a phone that never answered is the ringing start()'s to end: "failed")
                spawn(self.stop(session, "supervisor_hung_up"))
            elif channel_id == session.snoop_channel:
                spawn(self.stop(session, "snoop_ended"))

    async def forget_all(self, client: Any, channel_ids: list[str], bridge_ids: list[str]) -> None:
        """After a (re)connect: sessions were in memory; hang up what is left of them."""
        for session in list(self.sessions.values()):
            await self.stop(session, "reconnected")
        for channel_id in channel_ids:
            if self.owns(channel_id):
                with contextlib.suppress(Exception):
                    await client.channels.hangup(channelId=channel_id)
        for bridge_id in bridge_ids:
            if bridge_id.startswith(BRIDGE_PREFIX):
                with contextlib.suppress(Exception):
                    await client.bridges.destroy(bridgeId=bridge_id)
