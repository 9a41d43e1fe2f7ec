"""The AMI monitor: Asterisk's own view of endpoints, channels and bridges for the live panel.

A runtime component (``components={"ami": monitor.run}``) that logs in to the Asterisk
Manager Interface with panoramisk, keeps a small in-memory model and publishes hub events
when it changes::

    monitor = AmiMonitor(settings.ami, hub)
    monitor.device_state("PJSIP/agent01")   # "not_inuse", "ringing", "inuse", ... or None
    monitor.channels_of("PJSIP/agent01")    # the endpoint's live channels
    monitor.snapshot()                      # JSON-friendly: status, devices, channels, bridges

Model, from events (login with ``Events: system,call`` so dialplan/CDR noise never arrives):

* devices: ``DeviceStateChange`` (and ``ContactStatus`` for reachability);
* channels: ``Newchannel``, ``Newstate``, ``NewCallerid``, ``NewConnectedLine``, ``Rename``,
  ``Hangup``;
* bridges: ``BridgeCreate``, ``BridgeEnter``, ``BridgeLeave``, ``BridgeDestroy``.

Each change publishes :class:`AmiChanged`; connection changes publish
:class:`AmiStatusChanged`.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager

from asterisk_cube.config import AmiSettings
from asterisk_cube.events import Event, EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.redact import redact

log = get_logger(__name__)

EVENT_CLASSES = "system,call"

# Device states as keys: AMI's DeviceStateChange says NOT_INUSE, PJSIPShowEndpoints says
# "Not in use"; both become "not_inuse".
_DEVICE_STATES = {
    "unknown": "unknown",
    "not_inuse": "not_inuse",
    "not in use": "not_inuse",
    "inuse": "inuse",
    "in use": "inuse",
    "busy": "busy",
    "invalid": "invalid",
    "unavailable": "unavailable",
    "ringing": "ringing",
    "ringinuse": "ringinuse",
    "ring+inuse": "ringinuse",
    "onhold": "onhold",
    "on hold": "onhold",
}


def device_state_key(raw: str) -> str:
    return _DEVICE_STATES.get((raw or "").strip().lower(), "unknown")


def endpoint_of(channel_name: str) -> str:
    """``PJSIP/agent01-0000002a`` -> ``PJSIP/agent01`` (the device a channel belongs to)."""
    head, sep, _tail = channel_name.rpartition("-")
    return head if sep and "/" in head else channel_name


def _parse_duration(text: str) -> float:
    try:
        h, m, s = (int(x) for x in text.split(":"))
    except (ValueError, AttributeError):
        return 0.0
    return float(h * 3600 + m * 60 + s)


def _f(msg: Mapping[str, Any], key: str) -> str:
    try:
        value = msg[key]
    except KeyError:
        return ""
    return value if isinstance(value, str) else str(value or "")


def _num(value: str) -> str:
    return "" if value in ("<unknown>", "<Unknown>") else value


# ----------------------------------------------------------------------------- hub events


@dataclass(frozen=True)
class AmiStatusChanged(Event):
    """The AMI connection went up or down, or a resync finished."""

    connected: bool
    stale: bool
    stale_since: float | None
    reason: str = ""


@dataclass(frozen=True)
class AmiChanged(Event):
    """Something in the AMI model changed: ``what`` is device | channel | bridge | resync."""

    what: str
    key: str = ""


# ----------------------------------------------------------------------------- the model


@dataclass
class Device:
    name: str  # e.g. PJSIP/agent01
    state: str  # device_state_key
    since: float
    reachable: bool | None = None  # from ContactStatus, None: not known

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "since": self.since,
            "reachable": self.reachable,
        }


@dataclass
class Channel:
    uniqueid: str
    name: str
    state: str  # ChannelStateDesc: Down, Ring, Ringing, Up, Busy, ...
    created: float
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    context: str = ""
    exten: str = ""
    linkedid: str = ""
    bridge: str | None = None
    answered: float | None = None

    @property
    def endpoint(self) -> str:
        return endpoint_of(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uniqueid": self.uniqueid,
            "name": self.name,
            "endpoint": self.endpoint,
            "state": self.state,
            "created": self.created,
            "answered": self.answered,
            "caller": self.caller_num,
            "caller_name": self.caller_name,
            "connected": self.connected_num,
            "connected_name": self.connected_name,
            "context": self.context,
            "exten": self.exten,
            "linkedid": self.linkedid,
            "bridge": self.bridge,
        }


@dataclass
class Bridge:
    uniqueid: str
    type: str = ""
    channels: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"uniqueid": self.uniqueid, "type": self.type, "channels": sorted(self.channels)}


@dataclass
class _Journal:
    """What events changed while a resync's lists were being collected."""

    touched_channels: set[str] = field(default_factory=set)
    gone_channels: set[str] = field(default_factory=set)
    touched_devices: set[str] = field(default_factory=set)
    touched_bridges: set[str] = field(default_factory=set)
    gone_bridges: set[str] = field(default_factory=set)


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


class AmiMonitor:
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

    def _changed(self, what: str, key: str) -> None:
        self.hub.publish(AmiChanged(what=what, key=key))

    def _publish_status(self, reason: str = "") -> None:
        self.hub.publish(
            AmiStatusChanged(
                connected=self.connected,
                stale=self.stale,
                stale_since=self.stale_since,
                reason=reason,
            )
        )

    def on_event(self, msg: Mapping[str, Any]) -> bool:
        """Apply one AMI event to the model; True if it changed something."""
        self.events_seen += 1
        handler = self._HANDLERS.get(_f(msg, "Event"))
        if handler is None:
            return False
        return handler(self, msg)

    def _ev_device(self, msg: Mapping[str, Any]) -> bool:
        name = _f(msg, "Device")
        if not name:
            return False
        state = device_state_key(_f(msg, "State"))
        if self._journal is not None:
            self._journal.touched_devices.add(name)
        dev = self.devices.get(name)
        if dev is not None and dev.state == state:
            return False
        if dev is None:
            self.devices[name] = Device(name, state, self.clock())
        else:
            dev.state, dev.since = state, self.clock()
        self._changed("device", name)
        return True

    def _ev_contact(self, msg: Mapping[str, Any]) -> bool:
        endpoint = _f(msg, "EndpointName")
        status = _f(msg, "ContactStatus").lower()
        if not endpoint:
            return False
        name = f"PJSIP/{endpoint}"
        reachable = {"reachable": True, "unreachable": False, "removed": None}.get(status, ...)
        if reachable is ...:  # Created / Updated / NonQualified: says nothing new
            return False
        dev = self.devices.get(name)
        if dev is None:
            dev = self.devices[name] = Device(name, "unknown", self.clock())
        if dev.reachable == reachable:
            return False
        dev.reachable = reachable
        self._changed("device", name)
        return True

    def _touch(self, uid: str) -> None:
        if self._journal is not None:
            self._journal.touched_channels.add(uid)

    def _ev_newchannel(self, msg: Mapping[str, Any]) -> bool:
        uid = _f(msg, "Uniqueid")
        if not uid:
            return False
        self._touch(uid)
        now = self.clock()
        state = _f(msg, "ChannelStateDesc")
        self.channels[uid] = Channel(
            uniqueid=uid,
            name=_f(msg, "Channel"),
            state=state,
            created=now,
            caller_num=_num(_f(msg, "CallerIDNum")),
            caller_name=_num(_f(msg, "CallerIDName")),
            connected_num=_num(_f(msg, "ConnectedLineNum")),
            connected_name=_num(_f(msg, "ConnectedLineName")),
            context=_f(msg, "Context"),
            exten=_f(msg, "Exten"),
            linkedid=_f(msg, "Linkedid"),
            answered=now if state == "Up" else None,
        )
        self._changed("channel", uid)
        return True

    def _channel_for(self, msg: Mapping[str, Any]) -> Channel | None:
        uid = _f(msg, "Uniqueid")
        if not uid:
            return None
        self._touch(uid)
        ch = self.channels.get(uid)
        if ch is None and _f(msg, "Channel"):
            # An event for a channel we never saw (we connected after it was made, and the
            # resync has not listed it yet): start tracking it from this event.
            now = self.clock()
            ch = self.channels[uid] = Channel(
                uniqueid=uid,
                name=_f(msg, "Channel"),
                state=_f(msg, "ChannelStateDesc"),
                created=now,
                linkedid=_f(msg, "Linkedid"),
            )
        return ch

    def _ev_newstate(self, msg: Mapping[str, Any]) -> bool:
        ch = self._channel_for(msg)
        if ch is None:
            return False
        before = (ch.state, ch.caller_num, ch.caller_name, ch.connected_num, ch.connected_name)
        state = _f(msg, "ChannelStateDesc") or ch.state
        if state == "Up" and ch.answered is None:
            ch.answered = self.clock()
        ch.state = state
        for attr, key in (
            ("caller_num", "CallerIDNum"),
            ("caller_name", "CallerIDName"),
            ("connected_num", "ConnectedLineNum"),
            ("connected_name", "ConnectedLineName"),
        ):
            if key in msg:
                setattr(ch, attr, _num(_f(msg, key)))
        after = (ch.state, ch.caller_num, ch.caller_name, ch.connected_num, ch.connected_name)
        if before == after:
            return False
        self._changed("channel", ch.uniqueid)
        return True

    def _ev_rename(self, msg: Mapping[str, Any]) -> bool:
        ch = self.channels.get(_f(msg, "Uniqueid"))
        new = _f(msg, "Newname")
        if ch is None or not new or new == ch.name:
            return False
        self._touch(ch.uniqueid)
        ch.name = new
        self._changed("channel", ch.uniqueid)
        return True

    def _ev_hangup(self, msg: Mapping[str, Any]) -> bool:
        uid = _f(msg, "Uniqueid")
        if self._journal is not None:
            self._journal.gone_channels.add(uid)
        ch = self.channels.pop(uid, None)
        if ch is None:
            return False
        if ch.bridge and ch.bridge in self.bridges:
            self.bridges[ch.bridge].channels.discard(uid)
        self._changed("channel", uid)
        return True

    def _ev_bridge_create(self, msg: Mapping[str, Any]) -> bool:
        bid = _f(msg, "BridgeUniqueid")
        if not bid:
            return False
        if self._journal is not None:
            self._journal.touched_bridges.add(bid)
        bridge = self.bridges.get(bid)
        if bridge is None:
            self.bridges[bid] = Bridge(bid, _f(msg, "BridgeType"))
        elif bridge.type == _f(msg, "BridgeType"):
            return False
        else:
            bridge.type = _f(msg, "BridgeType")
        self._changed("bridge", bid)
        return True

    def _ev_bridge_destroy(self, msg: Mapping[str, Any]) -> bool:
        bid = _f(msg, "BridgeUniqueid")
        if self._journal is not None:
            self._journal.gone_bridges.add(bid)
        bridge = self.bridges.pop(bid, None)
        if bridge is None:
            return False
        for uid in bridge.channels:
            ch = self.channels.get(uid)
            if ch is not None and ch.bridge == bid:
                ch.bridge = None
        self._changed("bridge", bid)
        return True

    def _ev_bridge_enter(self, msg: Mapping[str, Any]) -> bool:
        bid = _f(msg, "BridgeUniqueid")
        ch = self._channel_for(msg)
        if ch is None or not bid:
            return False
        if self._journal is not None:
            self._journal.touched_bridges.add(bid)
        bridge = self.bridges.get(bid)
        if bridge is None:
            bridge = self.bridges[bid] = Bridge(bid, _f(msg, "BridgeType"))
        if ch.bridge and ch.bridge != bid and ch.bridge in self.bridges:
            self.bridges[ch.bridge].channels.discard(ch.uniqueid)
        ch.bridge = bid
        bridge.channels.add(ch.uniqueid)
        self._changed("bridge", bid)
        return True

    def _ev_bridge_leave(self, msg: Mapping[str, Any]) -> bool:
        bid = _f(msg, "BridgeUniqueid")
        uid = _f(msg, "Uniqueid")
        self._touch(uid)
        if self._journal is not None:
            self._journal.touched_bridges.add(bid)
        changed = False
        ch = self.channels.get(uid)
        if ch is not None and ch.bridge == bid:
            ch.bridge = None
            changed = True
        bridge = self.bridges.get(bid)
        if bridge is not None and uid in bridge.channels:
            bridge.channels.discard(uid)
            changed = True
        if changed:
            self._changed("bridge", bid)
        return changed

    _HANDLERS: dict[str, Callable[[AmiMonitor, Mapping[str, Any]], bool]] = {
        "DeviceStateChange": _ev_device,
        "ContactStatus": _ev_contact,
        "Newchannel": _ev_newchannel,
        "Newstate": _ev_newstate,
        "NewCallerid": _ev_newstate,
        "NewConnectedLine": _ev_newstate,
        "Rename": _ev_rename,
        "Hangup": _ev_hangup,
        "BridgeCreate": _ev_bridge_create,
        "BridgeDestroy": _ev_bridge_destroy,
        "BridgeEnter": _ev_bridge_enter,
        "BridgeLeave": _ev_bridge_leave,
    }

    # ----------------------------------------------------------------- resync

    def begin_resync(self) -> None:
        """Start journaling events: lists read from now on are merged with them."""
        self._journal = _Journal()

    def apply_lists(
        self,
        devices: Iterable[Mapping[str, Any]] = (),
        endpoints: Iterable[Mapping[str, Any]] = (),
        channels: Iterable[Mapping[str, Any]] = (),
        bridges: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Replace the model with the listed state (``DeviceStateChange`` items of
        DeviceStateList, ``EndpointList`` items of PJSIPShowEndpoints, ``CoreShowChannel``
        and ``BridgeListItem`` items), keeping what events changed since
        :meth:`begin_resync`. Ends the journal."""
        journal = self._journal or _Journal()
        self._journal = None
        now = self.clock()

        # devices: the newest of list and events
        listed_devices: dict[str, str] = {}
        for item in endpoints:
            name = _f(item, "ObjectName")
            if name and _f(item, "ObjectType") in ("", "endpoint"):
                listed_devices[f"PJSIP/{name}"] = device_state_key(_f(item, "DeviceState"))
        for item in devices:
            if _f(item, "Device"):
                listed_devices[_f(item, "Device")] = device_state_key(_f(item, "State"))
        new_devices: dict[str, Device] = {}
        for name, state in listed_devices.items():
            old = self.devices.get(name)
            if old is not None and (name in journal.touched_devices or old.state == state):
                new_devices[name] = old
            else:
                new_devices[name] = Device(
                    name, state, now, reachable=old.reachable if old else None
                )
        for name in journal.touched_devices:
            if name not in new_devices and name in self.devices:
                new_devices[name] = self.devices[name]

        # channels
        new_channels: dict[str, Channel] = {}
        for item in channels:
            uid = _f(item, "Uniqueid")
            if not uid or uid in journal.gone_channels:
                continue
            if uid in journal.touched_channels and uid in self.channels:
                new_channels[uid] = self.channels[uid]
                continue
            was = self.channels.get(uid)
            state = _f(item, "ChannelStateDesc")
            created = now - _parse_duration(_f(item, "Duration"))
            ch = Channel(
                uniqueid=uid,
                name=_f(item, "Channel"),
                state=state,
                created=was.created if was else created,
                caller_num=_num(_f(item, "CallerIDNum")),
                caller_name=_num(_f(item, "CallerIDName")),
                connected_num=_num(_f(item, "ConnectedLineNum")),
                connected_name=_num(_f(item, "ConnectedLineName")),
                context=_f(item, "Context"),
                exten=_f(item, "Exten"),
                linkedid=_f(item, "Linkedid"),
                bridge=_f(item, "BridgeId") or None,
                answered=(was.answered if was and was.answered else None)
                or (created if state == "Up" else None),
            )
            new_channels[uid] = ch
        for uid in journal.touched_channels:
            alive = uid not in journal.gone_channels and uid in self.channels
            if alive and uid not in new_channels:
                new_channels[uid] = self.channels[uid]

        # bridges: types from the list, members from the channels
        new_bridges: dict[str, Bridge] = {}
        for item in bridges:
            bid = _f(item, "BridgeUniqueid")
            if bid and bid not in journal.gone_bridges:
                new_bridges[bid] = Bridge(bid, _f(item, "BridgeType"))
        for bid in journal.touched_bridges:
            if bid not in new_bridges and bid in self.bridges and bid not in journal.gone_bridges:
                new_bridges[bid] = Bridge(bid, self.bridges[bid].type)
        for ch in new_channels.values():
            if ch.bridge and ch.bridge not in journal.gone_bridges:
                new_bridges.setdefault(ch.bridge, Bridge(ch.bridge)).channels.add(ch.uniqueid)
            elif ch.bridge:
                ch.bridge = None

        self.devices, self.channels, self.bridges = new_devices, new_channels, new_bridges
        self._changed("resync", "")

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

    async def resync(self) -> None:
        """Re-read the whole state after a login; then the model is no longer stale."""
        started = time.monotonic()
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
