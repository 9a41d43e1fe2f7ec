"""The AMI monitor: its model from recorded Asterisk events, the resync merge, and the
connection life cycle (login, resync, stale on disconnect, reconnect, refused login,
silent connection) against a small fake AMI server on loopback."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path

import pytest
from support import polling
from support.clocks import FakeClock as Clock

from asterisk_cube.ami.model import AmiChanged, AmiStatusChanged, device_state_key, endpoint_of
from asterisk_cube.ami.monitor import WANTED_EVENTS, AmiMonitor
from asterisk_cube.config import AmiSettings
from asterisk_cube.events import EventHub

RECORDED = Path(__file__).parent / "data" / "ami_call_events.json"


def monitor(hub: EventHub | None = None, **kwargs) -> AmiMonitor:
    return AmiMonitor(AmiSettings(), hub or EventHub(), clock=Clock(), **kwargs)


def test_names_and_states():
    assert endpoint_of("PJSIP/agent01-0000002a") == "PJSIP/agent01"
    assert endpoint_of("PJSIP/carrier-gw-00000001") == "PJSIP/carrier-gw"
    assert endpoint_of("Local/100@ctx-00000001;1") == "Local/100@ctx"
    assert device_state_key("NOT_INUSE") == device_state_key("Not in use") == "not_inuse"
    assert device_state_key("Ring+Inuse") == "ringinuse"
    assert device_state_key("garbage") == "unknown"


def test_a_recorded_call_builds_and_clears_the_model():
    """Events recorded from the sandbox Asterisk: carrier call -> Dial(PJSIP/agent01)."""
    hub = EventHub()
    sub = hub.subscribe(AmiChanged)
    mon = monitor(hub)
    events = json.loads(RECORDED.read_text())
    seen = {}
    for event in events:
        mon.on_event(event)
        if event["Event"] == "BridgeEnter" and len(mon.bridges) == 1:
            bridge = next(iter(mon.bridges.values()))
            seen["members"] = len(bridge.channels)
        if event["Event"] == "DeviceStateChange" and event["Device"] == "PJSIP/agent01":
            seen.setdefault("agent_states", []).append(mon.device_state("PJSIP/agent01"))
        if event["Event"] == "Newstate" and event["Channel"].startswith("PJSIP/agent01"):
            seen.setdefault("agent_channel", []).append(
                [(c.state, c.connected_num) for c in mon.channels_of("PJSIP/agent01")]
            )
    assert seen["agent_states"] == ["ringing", "inuse", "not_inuse"]
    assert seen["agent_channel"] == [[("Ringing", "0612345678")], [("Up", "0612345678")]]
    assert seen["members"] == 2
    assert mon.channels == {} and mon.bridges == {}
    assert mon.device_state("PJSIP/carrier") == "not_inuse"
    whats = [e.what for e in iter(sub.get_nowait, None)]
    assert {"device", "channel", "bridge"} <= set(whats)
    # Dial* / HangupRequest events change nothing and publish nothing
    assert len(whats) < len(events)


def test_channel_fields_and_answer_time():
    mon = monitor()
    mon.on_event(
        {
            "Event": "Newchannel",
            "Channel": "PJSIP/agent02-00000007",
            "ChannelStateDesc": "Down",
            "CallerIDNum": "agent02",
            "ConnectedLineNum": "<unknown>",
            "Uniqueid": "u7",
            "Linkedid": "u6",
            "Context": "cube-agents",
        }
    )
    ch = mon.channels["u7"]
    assert (ch.endpoint, ch.connected_num, ch.answered) == ("PJSIP/agent02", "", None)
    mon.clock.t += 4
    mon.on_event({"Event": "Newstate", "Uniqueid": "u7", "ChannelStateDesc": "Up"})
    assert ch.answered == 1004.0
    assert not mon.on_event({"Event": "Newstate", "Uniqueid": "u7", "ChannelStateDesc": "Up"})
    mon.on_event({"Event": "Rename", "Uniqueid": "u7", "Newname": "PJSIP/agent02-x<ZOMBIE>"})
    assert ch.name == "PJSIP/agent02-x<ZOMBIE>"
    snap = mon.snapshot()
    assert snap["channels"]["u7"]["state"] == "Up" and snap["status"]["stale"] is True


def test_contact_status_sets_reachability():
    mon = monitor()
    mon.on_event({"Event": "ContactStatus", "EndpointName": "agent03", "ContactStatus": "Created"})
    assert "PJSIP/agent03" not in mon.devices
    mon.on_event(
        {"Event": "ContactStatus", "EndpointName": "agent03", "ContactStatus": "Unreachable"}
    )
    assert mon.devices["PJSIP/agent03"].reachable is False
    mon.on_event(
        {"Event": "ContactStatus", "EndpointName": "agent03", "ContactStatus": "Reachable"}
    )
    assert mon.devices["PJSIP/agent03"].reachable is True


def _chan(uid, name, bridge="", duration="00:00:10", state="Up"):
    return {
        "Event": "CoreShowChannel",
        "Uniqueid": uid,
        "Channel": name,
        "ChannelStateDesc": state,
        "CallerIDNum": "123",
        "ConnectedLineNum": "<unknown>",
        "Duration": duration,
        "BridgeId": bridge,
    }


def test_resync_replaces_the_model_but_keeps_what_events_said_meanwhile():
    mon = monitor()
    # before the resync: state left over from a lost connection
    mon.on_event({"Event": "Newchannel", "Uniqueid": "old", "Channel": "PJSIP/x-1"})
    mon.on_event({"Event": "DeviceStateChange", "Device": "PJSIP/agent01", "State": "INUSE"})
    mon.begin_resync()
    # events while the lists are being collected
    mon.on_event({"Event": "Hangup", "Uniqueid": "gone-meanwhile"})
    mon.on_event({"Event": "Newchannel", "Uniqueid": "new", "Channel": "PJSIP/agent02-9"})
    mon.on_event({"Event": "DeviceStateChange", "Device": "PJSIP/agent02", "State": "RINGING"})
    mon.apply_lists(
        devices=[
            {"Event": "DeviceStateChange", "Device": "PJSIP/agent01", "State": "NOT_INUSE"},
            {"Event": "DeviceStateChange", "Device": "PJSIP/agent02", "State": "NOT_INUSE"},
        ],
        endpoints=[
            {
                "Event": "EndpointList",
                "ObjectType": "endpoint",
                "ObjectName": "agent09",
                "DeviceState": "Unavailable",
            },
        ],
        channels=[
            _chan("a", "PJSIP/carrier-1", bridge="b1", duration="00:01:40"),
            _chan("b", "PJSIP/agent01-2", bridge="b1"),
            _chan("gone-meanwhile", "PJSIP/agent03-3"),
        ],
        bridges=[{"Event": "BridgeListItem", "BridgeUniqueid": "b1", "BridgeType": "basic"}],
    )
    assert set(mon.channels) == {"a", "b", "new"}  # "old" is gone, "gone-meanwhile" stays gone
    assert mon.channels["a"].created == 1000.0 - 100 and mon.channels["a"].answered == 900.0
    assert mon.bridges["b1"].channels == {"a", "b"} and mon.bridges["b1"].type == "basic"
    assert mon.device_state("PJSIP/agent01") == "not_inuse"
    assert mon.device_state("PJSIP/agent02") == "ringing"  # the event was newer
    assert mon.device_state("PJSIP/agent09") == "unavailable"


# ------------------------------------------------------------------ a fake AMI server


class FakeAmi:
    """Speaks enough AMI: banner, Login, FullyBooted, list actions, Ping; can send events,
    refuse logins, go silent, or drop every connection."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.secret = "s3cret"
        self.silent = False
        self.logins = 0
        self.channels = [_chan("c1", "PJSIP/agent01-0001", bridge="b1")]
        self.actions: list[str] = []
        self.filters: list[str] | None = None  # None: Filter is unknown (older Asterisk)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                msg = dict(
                    line.split(": ", 1)
                    for line in raw.decode().strip().split("\r\n")
                    if ": " in line
                )
                await self.answer(writer, msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def send(self, writer, items) -> None:
        for item in items:
            writer.write("".join(f"{k}: {v}\r\n" for k, v in item.items()).encode() + b"\r\n")

    async def answer(self, writer, msg) -> None:
        action, aid = msg.get("Action"), msg.get("ActionID", "")
        self.actions.append(action)
        if self.silent:
            return
        if action == "Login":
            if msg.get("Secret") != self.secret:
                self.send(
                    writer,
                    [{"Response": "Error", "ActionID": aid, "Message": "Authentication failed"}],
                )
                return
            self.logins += 1
            self.send(
                writer,
                [
                    {"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"},
                    {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
                ],
            )
        elif action == "Ping":
            self.send(writer, [{"Response": "Success", "ActionID": aid, "Ping": "Pong"}])
        elif action == "Filter" and self.filters is not None:
            self.filters.append(msg.get("MatchCriteria", ""))
            self.send(writer, [{"Response": "Success", "ActionID": aid}])
        elif action in ("DeviceStateList", "CoreShowChannels", "BridgeList", "PJSIPShowEndpoints"):
            items = {
                "DeviceStateList": [
                    {"Event": "DeviceStateChange", "Device": "PJSIP/agent01", "State": "INUSE"}
                ],
                "CoreShowChannels": self.channels,
                "BridgeList": [
                    {"Event": "BridgeListItem", "BridgeUniqueid": "b1", "BridgeType": "basic"}
                ],
                "PJSIPShowEndpoints": [],
            }[action]
            complete = {
                "DeviceStateList": "DeviceStateListComplete",
                "CoreShowChannels": "CoreShowChannelsComplete",
                "BridgeList": "BridgeListComplete",
                "PJSIPShowEndpoints": "EndpointListComplete",
            }[action]
            self.send(
                writer,
                [
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "EventList": "start",
                        "Message": "follows",
                    }
                ],
            )
            self.send(writer, [{**i, "ActionID": aid} for i in items])
            self.send(
                writer,
                [
                    {
                        "Event": complete,
                        "ActionID": aid,
                        "EventList": "Complete",
                        "ListItems": str(len(items)),
                    }
                ],
            )
        else:
            self.send(writer, [{"Response": "Error", "ActionID": aid, "Message": "unknown"}])

    def event(self, **fields) -> None:
        for writer in self.writers:
            if not writer.is_closing():
                self.send(writer, [fields])

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.drop()
        self.server.close()
        await self.server.wait_closed()


until = functools.partial(polling.until, timeout=5.0, every=0.01)


@pytest.fixture
async def ami():
    server = FakeAmi()
    port = await server.start()
    yield server, port
    await server.close()


def _monitor(port, hub, secret="s3cret", **kwargs):
    settings = AmiSettings(host="127.0.0.1", port=port, username="cube", secret=secret)
    return AmiMonitor(settings, hub, **{"ping_interval": 0.1, "ping_timeout": 0.3, **kwargs})


async def test_login_resync_events_disconnect_stale_reconnect(ami):
    server, port = ami
    hub = EventHub()
    status = hub.subscribe(AmiStatusChanged)
    mon = _monitor(port, hub)
    assert mon.stale and mon.stale_since is not None  # nothing known before the first login
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: not mon.stale, what="first resync")
        assert set(mon.channels) == {"c1"} and mon.bridges["b1"].channels == {"c1"}
        assert mon.device_state("PJSIP/agent01") == "inuse"
        assert mon.stale_since is None and mon.connects == 1

        server.event(Event="Hangup", Uniqueid="c1", Channel="PJSIP/agent01-0001", Cause="16")
        server.event(Event="DeviceStateChange", Device="PJSIP/agent01", State="NOT_INUSE")
        await until(lambda: mon.device_state("PJSIP/agent01") == "not_inuse", what="event")
        assert mon.channels == {}

        server.channels = [_chan("c2", "PJSIP/agent02-0002")]
        before = time.time()
        server.drop()
        await until(lambda: mon.stale, what="stale after the drop")
        assert not mon.connected and mon.stale_since >= before - 0.01
        assert mon.last_error
        await until(lambda: not mon.stale, timeout=5, what="reconnect + resync")
        assert mon.connects == 2 and server.logins == 2
        assert set(mon.channels) == {"c2"}  # re-read after the reconnect
        reasons = [e.reason for e in iter(status.get_nowait, None)]
        assert reasons[:3] == ["starting", "connected", "resynced"]
        assert reasons[3:] == ["disconnected", "connected", "resynced"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert mon.stale and mon.manager is None


async def test_a_silent_connection_is_dropped_by_the_watchdog(ami):
    server, port = ami
    mon = _monitor(port, EventHub())
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: not mon.stale, what="first resync")
        server.silent = True  # TCP stays up, nothing answers
        await until(lambda: mon.stale, timeout=3, what="watchdog")
        assert mon.last_error in ("ping timeout", "connection lost")
        server.silent = False
        await until(lambda: not mon.stale, timeout=5, what="reconnect")
        assert mon.connects >= 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_refused_login_stays_stale_and_says_why(ami):
    _server, port = ami
    mon = _monitor(port, EventHub(), secret="wrong")
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: mon.last_error == "login refused", what="refusal")
        assert mon.stale and not mon.connected
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_no_asterisk_at_all(unused_tcp_port):
    mon = _monitor(unused_tcp_port, EventHub())
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: mon.last_error.startswith("cannot connect"), what="error")
        assert mon.stale
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_asks_asterisk_for_only_the_events_it_reads(ami):
    server, port = ami
    server.filters = []
    mon = _monitor(port, EventHub())
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: not mon.stale, what="first resync")
        assert mon.filtered
        assert sorted(server.filters) == sorted(
            f"action(include),name({name})" for name in WANTED_EVENTS
        )
        assert {"FullyBooted", "Hangup", "DeviceStateChange", "BridgeEnter"} <= set(WANTED_EVENTS)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_refused_filter_still_resyncs_with_every_event(ami):
    server, port = ami  # server.filters None: "Filter" answered with an error
    mon = _monitor(port, EventHub())
    task = asyncio.create_task(mon.run())
    try:
        await until(lambda: not mon.stale, what="first resync")
        assert not mon.filtered and "Filter" in server.actions
        server.event(Event="DeviceStateChange", Device="PJSIP/agent01", State="NOT_INUSE")
        await until(lambda: mon.device_state("PJSIP/agent01") == "not_inuse", what="event")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
