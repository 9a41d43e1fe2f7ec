"""The AMI monitor: Asterisk's own view of endpoints, channels and bridges for the live panel.

A runtime component (``components={"ami": monitor.run}``) that logs in to the Asterisk
Manager Interface with panoramisk, keeps a small in-memory model and publishes hub events
when it changes::

    monitor = AmiMonitor(settings.ami, hub)
    monitor.device_state("PJSIP/agent01")   # "not_inuse", "ringing", "inuse", ... or None
    monitor.channels_of("PJSIP/agent01")    # the endpoint's live channels
    monitor.snapshot()                      # JSON-friendly: status, devices, channels, bridges

Model, from events (login with ``Events: system,call`` so dialplan/CDR noise never arrives;
then, per connection, one AMI ``Filter`` per event name the model uses, so that Asterisk
sends only those: see :meth:`AmiMonitor.filter_events`):

* devices: ``DeviceStateChange`` (and ``ContactStatus`` for reachability);
* channels: ``Newchannel``, ``Newstate``, ``NewCallerid``, ``NewConnectedLine``, ``Rename``,
  ``Hangup``;
* bridges: ``BridgeCreate``, ``BridgeEnter``, ``BridgeLeave``, ``BridgeDestroy``.

Each change publishes :class:`AmiChanged`; connection changes publish
:class:`AmiStatusChanged`. The model's types are in :mod:`.model`, the events' effect on it
in :mod:`.tracker` (``AmiTracker``, which this class extends with the connection).

Staleness: the model is *stale* from the start until the first login and resync, and
from the moment the connection drops until the next login and resync are done
(``stale`` / ``stale_since``, shown by the panel as a banner). panoramisk reconnects by
itself (``reconnect_timeout``); after every login the monitor re-reads the whole state
(``DeviceStateList``, ``PJSIPShowEndpoints``, ``CoreShowChannels``, ``BridgeList``) and
merges it with the events that arrived meanwhile (an event is newer than a list reply
that was still being collected: a channel hung up during the resync is not brought back).
A watchdog pings every ``ping_interval`` seconds and drops a connection that does not
answer within ``ping_timeout`` (a half-open TCP connection otherwise looks alive forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk import Manager

from asterisk_cube.config import AmiSettings
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.redact import redact

from .model import AmiStatusChanged, Bridge, Channel, Device, _f, _Journal
from .tracker import AmiTracker

log = get_logger(__name__)

EVENT_CLASSES = "system,call"

#: the events the monitor reads: the model's (``AmiTracker._HANDLERS``) and two about the
#: connection. Everything else of the ``system,call`` classes (DialBegin, HangupRequest,
#: MusicOnHoldStart, SoftHangupRequest, ...) Asterisk need not send at all.
WANTED_EVENTS: tuple[str, ...] = (*AmiTracker._HANDLERS, "FullyBooted", "Shutdown")


class _Manager(Manager):
    """panoramisk's Manager that stops reconnecting once closed (its ``close`` alone
    lets ``connection_lost`` schedule another connect)."""

    closing = False
    on_login_refused: Callable[[Manager], None] | None = None

    def login(self, future: Any) -> bool:
        ok = super().login(future)
        if not ok and self.on_login_refused is not None:
            self.on_login_refused(self)
        return ok

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: Any) -> None:
        if self.closing:
            self._connected = False
            self.loop.call_soon(self.on_disconnect, self, exc)
            return
        super().connection_lost(exc)

    def shutdown(self) -> None:
        self.closing = True
        self.close()


def _quiet_logger() -> logging.Logger:
    # panoramisk logs every failed reconnect at WARNING (once a second while Asterisk is
    # down): the monitor logs state changes itself, once.
    logger = logging.getLogger("asterisk_cube.ami.panoramisk")
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    return logger


class AmiMonitor(AmiTracker):
    """See the module docstring. Use from the event loop's thread only."""

    def __init__(
        self,
        settings: AmiSettings,
        hub: EventHub,
        *,
        clock: Callable[[], float] = time.time,
        reconnect: float = 1.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        boot_wait: float = 5.0,
        manager_factory: Callable[..., Manager] | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.clock = clock
        self.reconnect = reconnect
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.boot_wait = boot_wait
        self.manager_factory = manager_factory or _Manager
        self.manager: Manager | None = None
        self.devices: dict[str, Device] = {}
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.connected = False  # logged in
        self.synced = False  # the model reflects Asterisk (a resync finished since login)
        self.stale_since: float | None = clock()
        self.last_error = ""
        self.connects = 0
        self.resyncs = 0
        self.events_seen = 0
        self.filtered = False  # Asterisk sends this session only WANTED_EVENTS
        self._journal: _Journal | None = None
        self._resync_task: asyncio.Task | None = None
        self._boot_timer: asyncio.TimerHandle | None = None
        self._booted = False  # FullyBooted seen on this connection
        self._refused_logged = False

    # ----------------------------------------------------------------- queries

    @property
    def stale(self) -> bool:
        return not (self.connected and self.synced)

    def device_state(self, device: str | None) -> str | None:
        if not device:
            return None
        found = self.devices.get(device)
        return found.state if found else None

    def channels_of(self, device: str) -> list[Channel]:
        return sorted(
            (ch for ch in self.channels.values() if ch.endpoint == device),
            key=lambda ch: ch.created,
        )

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "stale": self.stale,
            "stale_since": self.stale_since,
            "last_error": self.last_error,
            "connects": self.connects,
            "resyncs": self.resyncs,
            "host": f"{self.settings.host}:{self.settings.port}",
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status(),
            "devices": {k: d.to_dict() for k, d in self.devices.items()},
            "channels": {k: c.to_dict() for k, c in self.channels.items()},
            "bridges": {k: b.to_dict() for k, b in self.bridges.items()},
        }

    # ----------------------------------------------------------------- events

    def _publish_status(self, reason: str = "") -> None:
        self.hub.publish(
            AmiStatusChanged(
                connected=self.connected,
                stale=self.stale,
                stale_since=self.stale_since,
                reason=reason,
            )
        )

    async def _list(self, action: str) -> list[Mapping[str, Any]]:
        """The items of a list action (``[]`` if Asterisk refuses it, e.g. no PJSIP)."""
        assert self.manager is not None
        reply = await asyncio.wait_for(
            self.manager.send_action({"Action": action}), self.action_timeout
        )
        if not isinstance(reply, list):
            if _f(reply, "Response") == "Error":
                log.info("ami_list_refused", action=action, message=_f(reply, "Message"))
            return []
        return [m for m in reply if _f(m, "Event") and not _f(m, "Event").endswith("Complete")]

    async def filter_events(self) -> bool:
        """Ask Asterisk to send this session only :data:`WANTED_EVENTS` (issue #19: about
        two thirds of a call's ``system,call`` events were parsed by panoramisk only to be
        dropped here). One ``Filter`` action per name with ``MatchCriteria: name(...)``
        (Asterisk 20.9, 21.4, 22 and later; needs the ``system`` write class, which the
        README's manager user has). Filters live as long as the connection, so this runs
        after every login. Refused (older Asterisk, no ``system`` write): the monitor
        carries on with every event and ignores the others, as before. True if filtered."""
        assert self.manager is not None
        replies = await asyncio.wait_for(
            asyncio.gather(
                *(
                    self.manager.send_action(
                        {
                            "Action": "Filter",
                            "Operation": "Add",
                            "MatchCriteria": f"action(include),name({name})",
                        }
                    )
                    for name in WANTED_EVENTS
                )
            ),
            self.action_timeout,
        )
        refused = [r for r in replies if _f(r, "Response") != "Success"]
        if refused:
            log.info("ami_filter_refused", message=_f(refused[0], "Message"))
        return not refused

    async def resync(self) -> None:
        """Re-read the whole state after a login; then the model is no longer stale."""
        started = time.monotonic()
        self.filtered = await self.filter_events()
        self.begin_resync()
        try:
            devices = await self._list("DeviceStateList")
            endpoints = await self._list("PJSIPShowEndpoints")
            channels = await self._list("CoreShowChannels")
            bridges = await self._list("BridgeList")
        except BaseException:
            self._journal = None
            raise
        self.apply_lists(devices, endpoints, channels, bridges)
        self.resyncs += 1
        self.synced = True
        self.stale_since = None
        log.info(
            "ami_resynced",
            devices=len(self.devices),
            channels=len(self.channels),
            bridges=len(self.bridges),
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        self._publish_status("resynced")

    # ----------------------------------------------------------------- connection

    def _on_login_refused(self, manager: Manager) -> None:
        self.last_error = "login refused"
        if not self._refused_logged:
            log.error("ami_login_refused", username=self.settings.username, host=self.settings.host)
            self._refused_logged = True
        self._drop("login refused", quiet=True)  # try again after ``reconnect``

    def _on_login(self, manager: Manager) -> None:
        self._refused_logged = False
        self.connected = True
        self.synced = False
        self.connects += 1
        self.last_error = ""
        log.info("ami_connected", host=self.settings.host, port=self.settings.port)
        self._publish_status("connected")
        # Asterisk answers logins before all its modules are loaded (a list action then
        # fails as unknown); it says FullyBooted once ready (at once if it already is).
        if self._resync_task is not None:
            self._resync_task.cancel()
        self._resync_task = None
        if self._boot_timer is not None:
            self._boot_timer.cancel()
        if self._booted:  # it came with the login answer
            self._start_resync()
        else:
            loop = asyncio.get_running_loop()
            self._boot_timer = loop.call_later(self.boot_wait, self._start_resync)

    def _start_resync(self) -> None:
        if self._boot_timer is not None:
            self._boot_timer.cancel()
            self._boot_timer = None
        if not self.connected or self._resync_task is not None:
            return
        self._resync_task = asyncio.get_running_loop().create_task(
            self._resync_guarded(), name="ami-resync"
        )

    async def _resync_guarded(self) -> None:
        try:
            await self.resync()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.last_error = redact(f"resync failed: {exc!r}")
            log.warning("ami_resync_failed", error=repr(exc))
            self._drop("resync failed")

    def _on_disconnect(self, manager: Manager, exc: Any) -> None:
        was = self.connected
        self._booted = False
        self.connected = False
        self.synced = False
        if self.stale_since is None:
            self.stale_since = self.clock()
        if self._resync_task is not None:
            self._resync_task.cancel()
            self._resync_task = None
        if self._boot_timer is not None:
            self._boot_timer.cancel()
            self._boot_timer = None
        if was:
            reason = str(exc) if isinstance(exc, Exception) and str(exc) else "connection lost"
            if not isinstance(exc, Exception) and exc is not None:
                reason = "asterisk shut down"  # panoramisk passes the Shutdown event
            self.last_error = reason = redact(reason)
            log.warning("ami_disconnected", reason=reason)
            self._publish_status("disconnected")

    def _drop(self, why: str, quiet: bool = False) -> None:
        """Close the transport: panoramisk reconnects (and we resync) after ``reconnect``."""
        manager = self.manager
        protocol = getattr(manager, "protocol", None) if manager else None
        transport = getattr(protocol, "transport", None)
        if not quiet:
            log.warning("ami_dropping_connection", reason=why)
        if transport is not None:
            transport.abort()

    def _dispatch(self, manager: Manager, msg: Any) -> None:
        if _f(msg, "Event") == "FullyBooted":
            self._booted = True
            self._start_resync()
            return
        try:
            self.on_event(msg)
        except Exception:
            log.exception("ami_event_failed", event=_f(msg, "Event"))

    def _make_manager(self) -> Manager:
        s = self.settings
        manager = self.manager_factory(
            loop=asyncio.get_running_loop(),
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret,
            events=EVENT_CLASSES,
            ping_delay=86400,  # the monitor's watchdog pings instead
            ping_interval=86400,
            reconnect_timeout=max(1, round(self.reconnect)),
            log=_quiet_logger(),
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        if isinstance(manager, _Manager):
            manager.on_login_refused = self._on_login_refused
        manager.register_event("*", self._dispatch)
        return manager

    async def run(self, state: Any = None) -> None:
        """The component: connect, keep the model, reconnect, until cancelled."""
        self.manager = self._make_manager()
        self._publish_status("starting")
        log.info("ami_monitor_start", host=self.settings.host, port=self.settings.port)
        self.manager.connect()
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                manager = self.manager
                if not getattr(manager, "_connected", False):
                    if not self.last_error:
                        self.last_error = (
                            f"cannot connect to {self.settings.host}:{self.settings.port}"
                        )
                    continue
                if not self.connected:
                    continue
                try:
                    await asyncio.wait_for(
                        manager.send_action({"Action": "Ping"}), self.ping_timeout
                    )
                except TimeoutError:
                    self.last_error = "ping timeout"
                    self._drop("no answer to Ping")
                except Exception as exc:  # the connection went away meanwhile
                    log.debug("ami_ping_failed", error=repr(exc))
        finally:
            self.close()

    def close(self) -> None:
        if self._boot_timer is not None:
            self._boot_timer.cancel()
            self._boot_timer = None
        if self._resync_task is not None:
            self._resync_task.cancel()
            self._resync_task = None
        manager, self.manager = self.manager, None
        if manager is not None:
            with contextlib.suppress(Exception):
                if isinstance(manager, _Manager):
                    manager.shutdown()
                else:
                    manager.close()
        if self.connected:
            self.connected = False
            self.synced = False
            self.stale_since = self.clock()
