"""Applies AMI events and list replies to the panel's model (:mod:`.model`): which devices,
channels and bridges Asterisk has, merged with the events that arrived during a resync.
No I/O: :class:`asterisk_cube.ami.monitor.AmiMonitor` (the connection) is an ``AmiTracker``
and feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asterisk_cube.events import EventHub

from .model import (
    AmiChanged,
    Bridge,
    Channel,
    Device,
    _f,
    _Journal,
    _num,
    _parse_duration,
    device_state_key,
)


class AmiTracker:
    """The model and the events that change it; the monitor sets these in its __init__."""

    hub: EventHub
    clock: Callable[[], float]
    devices: dict[str, Device]
    channels: dict[str, Channel]
    bridges: dict[str, Bridge]
    events_seen: int
    _journal: _Journal | None

    # ----------------------------------------------------------------- events

    def _changed(self, what: str, key: str) -> None:
        self.hub.publish(AmiChanged(what=what, key=key))

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

    _HANDLERS: dict[str, Callable[[AmiTracker, Mapping[str, Any]], bool]] = {
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
