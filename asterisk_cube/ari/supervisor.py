"""ARI supervisor: keeps one asyncari connection to Asterisk alive and dispatches Stasis events.

asyncari has no reconnect logic, and when the websocket drops its ``async for msg in client``
simply stops yielding, without an exception. :class:`AriSupervisor` therefore

* connects (REST + websocket, registering the Stasis app ``settings.ari.app``), retrying
  with capped, jittered exponential backoff while Asterisk is down or restarting;
* notices a dropped websocket three ways: our client subclass closes the event stream when
  asyncari's websocket task ends, a watchdog polls asyncari's set of open websockets, and a
  periodic REST ``GET /applications/<app>`` fails or shows the app gone (half-open TCP);
* after every (re)connect runs :meth:`AriSupervisor.resync`: lists the channels and bridges
  still in the app and hands them to the handler's optional ``on_resync`` hook;
* reads events in a tight loop (a slow consumer stalls asyncari and it gives up after 1.5 s)
  and hands each to the :class:`StasisHandler` in a task, ordered per channel (events of one
  channel run one after another, different channels in parallel);
* if the handler raises on ``StasisStart`` the channel is continued at ``cube-fallback,s,1``
  (the generated dialplan's announcement + hangup) so a bug never strands a caller.

Writing a handler (inbound/outbound apps plug in here)::

    class Inbound:
        async def on_event(self, event, client) -> None:
            if event.type == "StasisStart" and event.args[:1] == ["inbound"]:
                supervisor.spawn(self.run_call(event.channel, event.args))

        async def on_resync(self, snapshot: AppSnapshot, client) -> None:  # optional
            ...  # channels still in the app after a reconnect

``event`` is an asyncari ``EventMessage``: ``event.type``, ``event.channel`` (an asyncari
``Channel`` with REST methods such as ``await event.channel.answer()``), ``event.args``, and
``event_json(event)`` for the raw JSON. ``client`` is the asyncari client (``client.channels``,
``client.bridges``, ...). Don't wait for *later* events inside ``on_event`` (that would block
the channel's queue): start long call flows with :meth:`AriSupervisor.spawn`. Spawned tasks
belong to the connection and are cancelled when it drops; ``on_resync`` picks up from there.

Only one asyncari client per process: asyncari caches model objects per class, keyed by id,
and we reset that cache on every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import pprint
import random
import time
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio
import httpx

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

log = get_logger(__name__)

ConnectFactory = Callable[[AriSettings], AbstractAsyncContextManager[Any]]

REST_TIMEOUT = 15.0  # seconds for one ARI REST request


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
    """The raw JSON of an asyncari EventMessage (or a plain dict event)."""
    raw = getattr(event, "_orig_msg", None)
    if raw is None and isinstance(event, dict):
        raw = event
    return raw or {}


def event_type(event: Any) -> str:
    return str(getattr(event, "type", None) or event_json(event).get("type", ""))


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


# --- connecting with asyncari --------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """``http://h:8088``, ``http://h:8088/``, ``http://h:8088/ari`` -> ``http://h:8088/``."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"ARI url must look like http://host:port, got {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ari"):
        path = path[: -len("/ari")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def asyncari_connect(settings: AriSettings) -> AbstractAsyncContextManager[Any]:
    """Connect with asyncari; the client's event iterator ends when the websocket does."""
    return _asyncari_session(settings)


class _LazyPformat:
    """``pprint.pformat`` evaluated only if the log record is formatted."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pprint.pformat(self.obj)


@asynccontextmanager
async def _asyncari_session(settings: AriSettings) -> AsyncIterator[Any]:
    # Same as asyncari.connect(), plus: api_key quoted in the websocket URL, the event
    # reader created before the websocket opens, and an event stream that ends on a drop.
    import asyncari.client
    from asyncari.client import Client

    # asyncari pretty-prints every event for a debug line even with DEBUG off (5.7 % of
    # serve's CPU in the inbound profile, docs/benchmarks.md "Inbound dispatch"): lazy.
    asyncari.client.pformat = _LazyPformat
    from asyncswagger11.http_client import ApiKeyAuthenticator, AsynchronousHttpClient

    class QuotingApiKeyAuthenticator(ApiKeyAuthenticator):
        # asyncswagger11 pastes params into the websocket URL without quoting (it calls
        # apply(params, params) there); httpx quotes REST params itself.
        def apply(self, headers, params):
            key = self.api_key
            if headers is params:
                key = urllib.parse.quote(key, safe=":")
            params[self.param_name] = key

    class HttpClient(AsynchronousHttpClient):
        # asyncswagger11 retries a failed request after closing its httpx client, so the
        # retry always fails with "client has been closed" (hiding the real error) and the
        # REST side stays dead afterwards. It also waits up to 600 s and allows only 3
        # connections. Retry once on a transport error with the same pool instead.
        def __init__(self, auth):
            super().__init__(auth=auth)
            self.session = httpx.AsyncClient(
                timeout=REST_TIMEOUT,
                limits=httpx.Limits(max_keepalive_connections=10, max_connections=20),
            )

        async def request(self, method, url, params=None, data=None, headers=None):
            params = {} if params is None else params
            headers = {} if headers is None else headers
            if self.authenticator is not None and self.authenticator.matches(url):
                self.authenticator.apply(headers, params)
            kwargs = dict(method=method, url=url, params=params, content=data, headers=headers)
            try:
                response = await self.session.request(**kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                response = await self.session.request(**kwargs)  # a stale keep-alive socket
            if response.status_code >= 400:
                try:
                    response.raise_for_status()
                except httpx.HTTPStatusError as err:
                    err.data = None  # asyncari reads .data["message"] on 400
                    if response.status_code == 400:
                        with contextlib.suppress(ValueError):
                            err.data = response.json()
                    raise
            return response

    class SupervisedClient(Client):
        async def __aenter__(self):
            await self._init()
            self.__aiter__()  # the '*' reader exists before the first event arrives
            opened = anyio.Event()
            self.taskgroup.start_soon(self._run, opened)
            await opened.wait()
            return self

        async def _run(self, evt=None):
            try:
                await super()._run(evt)
            finally:
                # asyncari leaves `async for msg in client` waiting forever; end it instead.
                if self._reader is not None:
                    self._reader.send_stream.close()

    base_url = normalize_base_url(settings.url)
    host = urllib.parse.urlsplit(base_url).hostname
    auth = QuotingApiKeyAuthenticator(host, f"{settings.username}:{settings.password}")
    http_client = HttpClient(auth=auth)
    try:
        async with anyio.create_task_group() as tg:
            client = SupervisedClient(tg, base_url, [settings.app], http_client)
            async with client:
                try:
                    yield client
                finally:
                    tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await http_client.close()


def _forget_asyncari_objects() -> None:
    """Drop asyncari's per-class object caches (they pin objects to the old client)."""
    try:
        from asyncari.model import CLASS_MAP
    except ImportError:  # pragma: no cover
        return
    for cls in set(CLASS_MAP.values()):
        cls.cache = None
        cls.active = None


def _describe(exc: BaseException) -> str:
    """A short one-line description, unwrapping exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # httpx quotes the request URL, and asyncari authenticates with ?api_key=user:password
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
        connect: ConnectFactory = asyncari_connect,
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
        """``POST /channels`` (originate) straight through the REST client's connection
        pool. asyncari's ``client.channels.originate`` first builds the request with
        asyncswagger11 (~0.5-0.9 ms of CPU); ringing an agent is on the dispatch path.
        Raises like any failed request (``httpx.HTTPStatusError``)."""
        client = self.client
        if client is None:
            raise ConnectionError("ARI is not connected")
        url = urllib.parse.urljoin(normalize_base_url(self.settings.url), "ari/channels")
        params = {k: str(v) for k, v in params.items()}
        await client.swagger.http_client.request("POST", url, params=params)

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
        _forget_asyncari_objects()
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
        try:
            async for event in client:
                self.events_seen += 1
                if self._dispatch(event, client):
                    return "application replaced by another client"
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return "websocket closed"
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
            log.info("stasis_end", channel=channel_id)
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
        log.info(
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
            log.exception("ari_task_failed", task=asyncio.current_task().get_name())
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
