"""ARI supervisor: keeps one ARI connection to Asterisk alive and dispatches Stasis events.

The connection is the lean client of :mod:`asterisk_cube.ari.client` (REST pool + event
websocket; its event iterator ends when the websocket does). :class:`AriSupervisor`

* connects (REST + websocket, registering the Stasis app ``settings.ari.app``), retrying
  with capped, jittered exponential backoff while Asterisk is down or restarting;
* notices a dropped websocket three ways: the client's event stream ends, a watchdog polls
  the client's set of open websockets, and a periodic REST ``GET /applications/<app>``
  fails or shows the app gone (half-open TCP);
* after every (re)connect runs :meth:`AriSupervisor.resync`: lists the channels and bridges
  still in the app and hands them to the handler's optional ``on_resync`` hook;
* reads events in a tight loop and hands each to the :class:`StasisHandler` in a task,
  ordered per channel (events of one channel run one after another, different channels in
  parallel);
* if the handler raises on ``StasisStart`` the channel is continued at ``cube-fallback,s,1``
  (the generated dialplan's announcement + hangup) so a bug never strands a caller.

Writing a handler (inbound/outbound apps plug in here)::

    class Inbound:
        async def on_event(self, event, client) -> None:
            if event_type(event) == "StasisStart" and event_json(event)["args"][:1] == ["inbound"]:
                supervisor.spawn(self.run_call(event_channel_id(event), event))

        async def on_resync(self, snapshot: AppSnapshot, client) -> None:  # optional
            ...  # channels still in the app after a reconnect

``event`` is the event's JSON as a dict (``event_json(event)`` returns it, ``event_type``
its type). ``client`` is the :class:`~asterisk_cube.ari.client.AriClient`
(``await client.channels.answer(channelId=...)``, ``client.bridges.addChannel(...)``).
Don't wait for *later* events inside ``on_event`` (that would block the channel's queue):
start long call flows with :meth:`AriSupervisor.spawn`. Spawned tasks belong to the
connection and are cancelled when it drops; ``on_resync`` picks up from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..config import AriSettings
from ..events import (
    AriConnected,
    AriDisconnected,
    AriResynced,
    EventHub,
    StasisEnded,
    StasisStarted,
)
from ..logs import get_logger
from ..redact import redact
from .client import AriClient

log = get_logger(__name__)

ConnectFactory = Callable[[AriSettings], AbstractAsyncContextManager[Any]]


# --- handler interface ---------------------------------------------------------------------


@dataclass(frozen=True)
class AppSnapshot:
    """What Asterisk says is in our Stasis app right now (after a (re)connect)."""

    channel_ids: tuple[str, ...]
    bridge_ids: tuple[str, ...]
    endpoint_ids: tuple[str, ...] = ()


@runtime_checkable
class StasisHandler(Protocol):
    async def on_event(self, event: Any, client: Any) -> None:
        """Handle one ARI event. Raise to have a StasisStart channel sent to the fallback."""


def event_json(event: Any) -> dict[str, Any]:
    """The event's JSON (the client hands events on as decoded dicts)."""
    return event if isinstance(event, dict) else {}


def event_type(event: Any) -> str:
    return str(event_json(event).get("type", ""))


def event_channel_id(event: Any) -> str | None:
    channel = event_json(event).get("channel")
    return channel.get("id") if isinstance(channel, dict) else None


def _event_key(event: Any) -> str:
    """Which ordered queue an event goes to: its channel, else its bridge, else global."""
    raw = event_json(event)
    for name in ("channel", "peer"):
        obj = raw.get(name)
        if isinstance(obj, dict) and obj.get("id"):
            return "channel:" + obj["id"]
    for name in ("playback", "recording"):
        obj = raw.get(name)
        if isinstance(obj, dict) and obj.get("target_uri"):
            return str(obj["target_uri"])  # "channel:<id>" or "bridge:<id>"
    bridge = raw.get("bridge")
    if isinstance(bridge, dict) and bridge.get("id"):
        return "bridge:" + bridge["id"]
    return "global"


class DefaultStasisHandler:
    """Placeholder until the inbound/outbound apps exist: never strand a call.

    Every channel entering the app is continued in the dialplan at the next priority, and
    channels found in the app after a reconnect are continued too.
    """

    async def on_event(self, event: Any, client: Any) -> None:
        if event_type(event) != "StasisStart":
            return
        channel_id = event_channel_id(event)
        if channel_id:
            await continue_in_dialplan(client, channel_id)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        for channel_id in snapshot.channel_ids:
            await continue_in_dialplan(client, channel_id)


def connected_client(supervisor: Any) -> Any:
    """The supervisor's ARI client; ``ConnectionError`` while ARI is not connected (the
    one check every Stasis app and the supervisor itself make before a request)."""
    client = supervisor.client if supervisor is not None else None
    if client is None:
        raise ConnectionError("ARI is not connected")
    return client


async def continue_in_dialplan(client: Any, channel_id: str, **where: Any) -> bool:
    """``POST /channels/<id>/continue`` (``where``: context, extension, priority, label).

    Returns False (and logs) if the channel is gone or Asterisk refused.
    """
    try:
        await client.channels.continueInDialplan(channelId=channel_id, **where)
    except Exception as exc:
        log.warning("ari_continue_failed", channel=channel_id, error=_describe(exc), **where)
        return False
    log.info("stasis_continue", channel=channel_id, **where)
    return True


# --- backoff -------------------------------------------------------------------------------


@dataclass
class Backoff:
    """Exponential backoff, capped, with jitter: ``min(cap, initial * factor**n) * U(1-j, 1)``."""

    initial: float = 0.5
    factor: float = 2.0
    # Short cap: while we are away, new callers get the fallback; reconnect soon after a
    # PBX restart rather than politely late.
    cap: float = 5.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return base * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0


# --- connecting ----------------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """``http://h:8088``, ``http://h:8088/``, ``http://h:8088/ari`` -> ``http://h:8088/``."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"ARI url must look like http://host:port, got {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ari"):
        path = path[: -len("/ari")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def ari_connect(settings: AriSettings) -> AbstractAsyncContextManager[Any]:
    """Connect with the lean client (:mod:`asterisk_cube.ari.client`): REST pool + the event
    websocket for ``settings.app``; its event iterator ends when the websocket does."""
    return AriClient(
        normalize_base_url(settings.url), settings.username, settings.password, settings.app
    )


def _describe(exc: BaseException) -> str:
    """A short one-line description, unwrapping exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # an HTTP library may quote a request URL with credentials in it
    return redact(f"{type(exc).__name__}: {text}") if text else type(exc).__name__


class _ConnectionLost(Exception):
    pass


# --- the supervisor ------------------------------------------------------------------------


class AriSupervisor:
    """Keeps the ARI connection up and feeds events to a :class:`StasisHandler`."""

    def __init__(
        self,
        settings: AriSettings,
        hub: EventHub | None = None,
        handler: StasisHandler | None = None,
        *,
        fallback_context: str = "cube-fallback",
        connect: ConnectFactory = ari_connect,
        backoff: Backoff | None = None,
        ping_interval: float = 15.0,
        ping_timeout: float = 5.0,
        watch_interval: float = 0.5,
        stable_after: float = 10.0,
    ):
        self.settings = settings
        self.hub = hub or EventHub()
        self.handler: StasisHandler = handler or DefaultStasisHandler()
        self.fallback_context = fallback_context
        self._connect = connect
        self.backoff = backoff or Backoff()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.watch_interval = watch_interval
        self.stable_after = stable_after

        self.client: Any = None
        self.connected = False
        self.connects = 0  # successful connections so far
        self.events_seen = 0
        self.last_error = ""
        self.connected_since: float | None = None  # time.time() of the current connection
        self.alive_at: float | None = None  # time.monotonic(): connect or last ping answer
        self._queues: dict[str, deque] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._connected_event = asyncio.Event()

    # --- public API -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "app": self.settings.app,
            "url": redact(self.settings.url),
            "connects": self.connects,
            "events": self.events_seen,
            "since": self.connected_since,
            "last_error": self.last_error,
        }

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._connected_event.wait()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task:
        """Run per-call work in a task tied to the current connection; errors are logged."""
        task = asyncio.create_task(self._guard(coro), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def originate(self, **params: Any) -> None:
        """``POST /channels`` (originate); raises like any failed request
        (:class:`~asterisk_cube.ari.client.AriHttpError`, ``ConnectionError``)."""
        await connected_client(self).channels.originate(**params)

    async def resync(self) -> AppSnapshot | None:
        """Ask Asterisk what is in our app and hand it to ``handler.on_resync`` (if any)."""
        client = self.client
        if client is None:
            return None
        info = await client.applications.get(applicationName=self.settings.app)
        info = info if isinstance(info, dict) else getattr(info, "json", {}) or {}
        snapshot = AppSnapshot(
            channel_ids=tuple(info.get("channel_ids", ())),
            bridge_ids=tuple(info.get("bridge_ids", ())),
            endpoint_ids=tuple(info.get("endpoint_ids", ())),
        )
        log.info(
            "ari_resync",
            app=self.settings.app,
            channels=len(snapshot.channel_ids),
            bridges=len(snapshot.bridge_ids),
        )
        self.hub.publish(
            AriResynced(channel_ids=snapshot.channel_ids, bridge_ids=snapshot.bridge_ids)
        )
        hook = getattr(self.handler, "on_resync", None)
        if hook is not None:
            await hook(snapshot, client)
        return snapshot

    async def run(self) -> None:
        """Connect, serve, reconnect... until cancelled."""
        log.info("ari_supervisor_start", url=self.settings.url, app=self.settings.app)
        try:
            while True:
                started = time.monotonic()
                try:
                    reason = await self._session()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    reason = _describe(exc)
                was_connected = self.connected
                self._mark_disconnected()
                if was_connected and time.monotonic() - started >= self.stable_after:
                    self.backoff.reset()
                delay = self.backoff.next_delay()
                self.last_error = reason
                if was_connected:
                    log.warning("ari_disconnected", reason=reason, retry_in=round(delay, 2))
                    self.hub.publish(AriDisconnected(reason=reason, retry_in=delay))
                else:
                    log.warning(
                        "ari_connect_failed",
                        url=self.settings.url,
                        error=reason,
                        attempt=self.backoff.attempt,
                        retry_in=round(delay, 2),
                    )
                await asyncio.sleep(delay)
        finally:
            self._mark_disconnected()
            log.info("ari_supervisor_stop")

    # --- one connection --------------------------------------------------------------------

    async def _session(self) -> str:
        async with self._connect(self.settings) as client:
            self.client = client
            self.connected = True
            self.connects += 1
            self.connected_since = time.time()
            self.alive_at = time.monotonic()
            self.last_error = ""
            self._connected_event.set()
            log.info("ari_connected", url=self.settings.url, app=self.settings.app)
            self.hub.publish(AriConnected(url=self.settings.url, app=self.settings.app))
            reader = asyncio.create_task(self._read_events(client), name="ari-reader")
            watchdog = asyncio.create_task(self._watchdog(client), name="ari-watchdog")
            self.spawn(self._resync_logged(), name="ari-resync")
            try:
                done, _ = await asyncio.wait(
                    {reader, watchdog}, return_when=asyncio.FIRST_COMPLETED
                )
                finished = done.pop()
                exc = finished.exception()
                return _describe(exc) if exc is not None else finished.result()
            finally:
                for task in (reader, watchdog):
                    task.cancel()
                await self._cancel_connection_tasks()
                await asyncio.gather(reader, watchdog, return_exceptions=True)

    def _mark_disconnected(self) -> None:
        self.connected = False
        self.client = None
        self.connected_since = None
        self._connected_event.clear()

    async def _read_events(self, client: Any) -> str:
        async for event in client:
            self.events_seen += 1
            if self._dispatch(event, client):
                return "application replaced by another client"
        return "event stream ended"

    async def _watchdog(self, client: Any) -> str:
        next_ping = time.monotonic() + self.ping_interval
        failures = 0
        while True:
            await asyncio.sleep(self.watch_interval)
            websockets = getattr(client, "websockets", None)
            if websockets is not None and not websockets:
                return "websocket closed"
            if time.monotonic() < next_ping:
                continue
            next_ping = time.monotonic() + self.ping_interval
            try:
                async with asyncio.timeout(self.ping_timeout):
                    await client.applications.get(applicationName=self.settings.app)
                failures = 0
                self.alive_at = time.monotonic()
            except Exception as exc:
                failures += 1
                log.warning("ari_ping_failed", error=_describe(exc), failures=failures)
                if failures >= 2:
                    return f"ping failed: {_describe(exc)}"

    async def _resync_logged(self) -> None:
        try:
            await self.resync()
        except Exception as exc:
            log.warning("ari_resync_failed", error=_describe(exc))

    # --- dispatch --------------------------------------------------------------------------

    def _dispatch(self, event: Any, client: Any) -> bool:
        """Queue ``event`` for the handler; never awaits. True if we lost the app."""
        etype = event_type(event)
        if etype == "StasisStart":
            self._announce_start(event)
        elif etype == "StasisEnd":
            channel_id = event_channel_id(event) or ""
            log.debug("stasis_end", channel=channel_id)
            self.hub.publish(StasisEnded(channel_id=channel_id))
        elif etype == "ApplicationReplaced":
            log.error("ari_application_replaced", app=self.settings.app)
            return True
        key = _event_key(event)
        self._queues.setdefault(key, deque()).append(event)
        if key not in self._workers:
            task = asyncio.create_task(self._work(key, client), name=f"ari-{key}")
            self._workers[key] = task
        return False

    def _announce_start(self, event: Any) -> None:
        raw = event_json(event)
        channel = raw.get("channel") or {}
        caller = channel.get("caller") or {}
        args = tuple(str(a) for a in raw.get("args") or ())
        log.debug(
            "stasis_start",
            channel=channel.get("id", ""),
            name=channel.get("name", ""),
            caller=caller.get("number", ""),
            args=args,
            asterisk_at=raw.get("timestamp", ""),  # when Asterisk sent it: our intake delay
        )
        self.hub.publish(
            StasisStarted(
                channel_id=channel.get("id", ""),
                channel_name=channel.get("name", ""),
                args=args,
                caller_number=caller.get("number", ""),
                caller_name=caller.get("name", ""),
                exten=(channel.get("dialplan") or {}).get("exten", ""),
            )
        )

    async def _work(self, key: str, client: Any) -> None:
        queue = self._queues[key]
        try:
            while queue:
                event = queue.popleft()
                await self._handle(event, client)
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _handle(self, event: Any, client: Any) -> None:
        try:
            await self.handler.on_event(event, client)
        except asyncio.CancelledError:
            raise
        except Exception:
            etype = event_type(event)
            channel_id = event_channel_id(event)
            log.exception("stasis_handler_failed", type=etype, channel=channel_id)
            if etype == "StasisStart" and channel_id:
                await self._rescue(event, client, channel_id)

    async def _rescue(self, event: Any, client: Any, channel_id: str) -> None:
        """Send a channel whose StasisStart failed to ``cube-fallback,s,1``, or hang it up."""
        where = {"context": self.fallback_context, "extension": "s", "priority": 1}
        if not await continue_in_dialplan(client, channel_id, **where):
            with contextlib.suppress(Exception):
                await client.channels.hangup(channelId=channel_id)

    async def _guard(self, coro: Awaitable[Any]) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            task = asyncio.current_task()  # never None: a coroutine runs in a task
            log.exception("ari_task_failed", task=task.get_name() if task else None)
            return None

    async def _cancel_connection_tasks(self) -> None:
        tasks = [*self._workers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        self._workers.clear()
        self._queues.clear()
        self._tasks.clear()
