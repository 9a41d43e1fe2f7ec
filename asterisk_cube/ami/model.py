"""The live panel's model of Asterisk as AMI reports it: devices (endpoint state and
reachability), channels and bridges, the hub events that announce their changes, and the
small parsers of AMI fields. Plain data; :class:`asterisk_cube.ami.monitor.AmiMonitor`
keeps it current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asterisk_cube.events import Event

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
