"""The ARI supervisor's reconnect, re-sync and dispatch logic, with a fake ARI client.

The fake behaves like a client after a websocket drop: its event iterator either ends or just
stops yielding (no exception) while its set of open websockets empties.
"""

from __future__ import annotations

import asyncio
import functools
import random
from contextlib import asynccontextmanager

import pytest
from support import polling

from asterisk_cube.ari.supervisor import (
    AppSnapshot,
    AriSupervisor,
    Backoff,
    DefaultStasisHandler,
    normalize_base_url,
)
from asterisk_cube.config import AriSettings
from asterisk_cube.events import AriConnected, AriDisconnected, EventHub, StasisStarted

END = object()


class FakeChannels:
    def __init__(self):
        self.continued: list[tuple[str, dict]] = []
        self.hung_up: list[str] = []
        self.fail_continue = False

    async def continueInDialplan(self, channelId, **where):
        if self.fail_continue:
            raise RuntimeError("404 channel not found")
        self.continued.append((channelId, where))

    async def hangup(self, channelId):
        self.hung_up.append(channelId)


class FakeApplications:
    def __init__(self, client):
        self.client = client
        self.calls = 0

    async def get(self, applicationName):
        self.calls += 1
        if self.client.ping_fails:
            raise ConnectionError("REST down")
        return {"name": applicationName, "channel_ids": list(self.client.in_app), "bridge_ids": []}


class FakeClient:
    def __init__(self, in_app=()):
        self.websockets = {"ws"}
        self.in_app = list(in_app)
        self.ping_fails = False
        self.channels = FakeChannels()
        self.applications = FakeApplications(self)
        self.queue: asyncio.Queue = asyncio.Queue()

    def __aiter__(self):
        return self._events()

    async def _events(self):
        while True:
            item = await self.queue.get()
            if item is END:
                return
            yield item

    def emit(self, event):
        self.queue.put_nowait(event)

    def end_stream(self):
        """The iterator ends (the lean client after a drop)."""
        self.queue.put_nowait(END)

    def drop_silently(self):
        """A client whose iterator just waits after a drop while its websocket is gone."""
        self.websockets.clear()


class FakeConnector:
    """Hands out prepared clients; a prepared exception simulates Asterisk being down."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.attempts = 0
        self.clients: list[FakeClient] = []
        self.connected = asyncio.Event()

    def __call__(self, settings):
        return self._connect(settings)

    @asynccontextmanager
    async def _connect(self, settings):
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else FakeClient()
        if isinstance(outcome, Exception):
            raise outcome
        self.clients.append(outcome)
        self.connected.set()
        yield outcome


def stasis_start(channel_id, *args, exten="4721000001"):
    return {
        "type": "StasisStart",
        "args": list(args),
        "channel": {
            "id": channel_id,
            "name": f"PJSIP/carrier-{channel_id}",
            "caller": {"number": "4791234567", "name": "Kari"},
            "dialplan": {"context": "cube-inbound", "exten": exten, "priority": 3},
        },
    }


def channel_event(etype, channel_id, **extra):
    return {"type": etype, "channel": {"id": channel_id}, **extra}


def make_supervisor(connector, handler=None, hub=None, **kw):
    kw.setdefault("backoff", Backoff(initial=0.01, cap=0.05, rng=random.Random(1)))
    kw.setdefault("watch_interval", 0.01)
    kw.setdefault("ping_interval", 60)
    return AriSupervisor(
        AriSettings(url="http://127.0.0.1:1"), hub or EventHub(), handler, connect=connector, **kw
    )


until = functools.partial(polling.until, timeout=2.0, every=0.005)


@pytest.fixture
async def running():
    tasks = []

    def start(sup):
        task = asyncio.create_task(sup.run())
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Recorder:
    def __init__(self):
        self.events = []
        self.resyncs: list[AppSnapshot] = []

    async def on_event(self, event, client):
        self.events.append((event["type"], event.get("channel", {}).get("id")))

    async def on_resync(self, snapshot, client):
        self.resyncs.append(snapshot)


# --- reconnecting --------------------------------------------------------------------------


async def test_keeps_retrying_while_asterisk_is_down(running):
    down = ConnectionRefusedError("All connection attempts failed")
    connector = FakeConnector(down, down, down)
    sup = make_supervisor(connector)
    running(sup)
    await asyncio.wait_for(sup.wait_connected(), 2)
    assert connector.attempts == 4
    assert sup.connected and sup.connects == 1


async def test_silently_ended_event_stream_triggers_reconnect_and_resync(running):
    hub = EventHub()
    sub = hub.subscribe(AriConnected, AriDisconnected)
    rec = Recorder()
    first = FakeClient(in_app=[])
    second = FakeClient(in_app=["c1"])
    connector = FakeConnector(first, second)
    sup = make_supervisor(connector, rec, hub)
    running(sup)
    await until(lambda: len(rec.resyncs) == 1)
    first.end_stream()  # the iterator stops, no exception
    await until(lambda: len(rec.resyncs) == 2)
    assert sup.connected and sup.connects == 2 and connector.attempts == 2
    assert rec.resyncs[1].channel_ids == ("c1",)
    kinds = [type(sub.get_nowait()) for _ in range(3)]
    assert kinds == [AriConnected, AriDisconnected, AriConnected]


async def test_iterator_that_just_stops_yielding_is_detected_by_the_watchdog(running):
    hub = EventHub()
    drops = hub.subscribe(AriDisconnected)
    rec = Recorder()
    first = FakeClient()
    connector = FakeConnector(first)
    sup = make_supervisor(connector, rec, hub)
    running(sup)
    await until(lambda: len(rec.resyncs) == 1)
    first.drop_silently()  # iterator blocks forever, websocket set empties
    await until(lambda: sup.connects == 2)
    assert drops.get_nowait().reason == "websocket closed"


async def test_failing_rest_ping_triggers_reconnect(running):
    hub = EventHub()
    drops = hub.subscribe(AriDisconnected)
    rec = Recorder()
    first = FakeClient()
    connector = FakeConnector(first)
    sup = make_supervisor(connector, rec, hub, ping_interval=0.02, ping_timeout=0.5)
    running(sup)
    await until(lambda: len(rec.resyncs) == 1)
    first.ping_fails = True  # half-open TCP: websocket looks fine, REST does not answer
    await until(lambda: sup.connects == 2)
    assert connector.attempts == 2
    assert drops.get_nowait().reason.startswith("ping failed")


async def test_backoff_grows_while_down_and_is_capped(running):
    delays = []

    class Recording(Backoff):
        def next_delay(self):
            d = super().next_delay()
            delays.append(d)
            return d

    down = [ConnectionRefusedError("down")] * 6
    connector = FakeConnector(*down)
    sup = make_supervisor(connector, backoff=Recording(initial=0.001, cap=0.004, jitter=0.5))
    running(sup)
    await asyncio.wait_for(sup.wait_connected(), 2)
    assert len(delays) == 6
    assert all(d <= 0.004 for d in delays)
    assert delays[0] <= 0.001 and max(delays) > 0.002


def test_backoff_numbers():
    b = Backoff(initial=0.5, factor=2, cap=30, jitter=0.5, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(10)]
    for n, d in enumerate(delays):
        base = min(30, 0.5 * 2**n)
        assert base / 2 <= d <= base
    b.reset()
    assert b.next_delay() <= 0.5


# --- dispatching ---------------------------------------------------------------------------


async def test_default_handler_continues_every_call_and_stranded_channels(running):
    hub = EventHub()
    sub = hub.subscribe(StasisStarted)
    client = FakeClient(in_app=["old1"])
    sup = make_supervisor(FakeConnector(client), DefaultStasisHandler(), hub)
    running(sup)
    await until(lambda: client.channels.continued)
    client.emit(stasis_start("c1", "inbound", "3"))
    await until(lambda: len(client.channels.continued) == 2)
    assert client.channels.continued == [("old1", {}), ("c1", {})]
    started = sub.get_nowait()
    assert (started.channel_id, started.args, started.caller_number) == (
        "c1",
        ("inbound", "3"),
        "4791234567",
    )


async def test_handler_error_on_stasis_start_sends_the_call_to_the_fallback(running):
    class Broken:
        async def on_event(self, event, client):
            raise RuntimeError("bug")

    client = FakeClient()
    sup = make_supervisor(FakeConnector(client), Broken())
    running(sup)
    await sup.wait_connected(1)
    client.emit(channel_event("ChannelDtmfReceived", "c0", digit="1"))  # error: just logged
    client.emit(stasis_start("c1", "inbound", "3"))
    await until(lambda: client.channels.continued)
    assert client.channels.continued == [
        ("c1", {"context": "cube-fallback", "extension": "s", "priority": 1})
    ]
    # if even that fails, the channel is hung up rather than stranded
    client.channels.fail_continue = True
    client.emit(stasis_start("c2", "inbound", "3"))
    await until(lambda: client.channels.hung_up == ["c2"])


async def test_events_of_one_channel_stay_in_order_while_channels_run_in_parallel(running):
    release = asyncio.Event()
    log = []

    class Slow:
        async def on_event(self, event, client):
            cid = event["channel"]["id"]
            if cid == "slow" and event["type"] == "StasisStart":
                await release.wait()
            log.append((cid, event["type"]))

    client = FakeClient()
    sup = make_supervisor(FakeConnector(client), Slow())
    running(sup)
    await sup.wait_connected(1)
    client.emit(stasis_start("slow"))
    client.emit(channel_event("ChannelDtmfReceived", "slow", digit="5"))
    client.emit(stasis_start("fast"))
    client.emit(channel_event("StasisEnd", "fast"))
    await until(lambda: len(log) == 2)
    assert log == [("fast", "StasisStart"), ("fast", "StasisEnd")]  # not stuck behind "slow"
    release.set()
    await until(lambda: len(log) == 4)
    assert log[2:] == [("slow", "StasisStart"), ("slow", "ChannelDtmfReceived")]


async def test_playback_events_queue_behind_their_channel(running):
    rec = Recorder()
    client = FakeClient()
    sup = make_supervisor(FakeConnector(client), rec)
    running(sup)
    await sup.wait_connected(1)
    client.emit({"type": "PlaybackFinished", "playback": {"id": "p1", "target_uri": "channel:c9"}})
    await until(lambda: rec.events)
    assert "channel:c9" not in sup._workers  # worker finished and removed itself


async def test_spawned_tasks_are_cancelled_when_the_connection_drops(running):
    client = FakeClient()
    connector = FakeConnector(client)
    sup = make_supervisor(connector)
    running(sup)
    await sup.wait_connected(1)
    task = sup.spawn(asyncio.sleep(60))
    client.end_stream()
    await until(lambda: task.done())
    assert task.cancelled()


async def test_application_replaced_reconnects(running):
    client = FakeClient()
    connector = FakeConnector(client)
    sup = make_supervisor(connector)
    running(sup)
    await sup.wait_connected(1)
    client.emit({"type": "ApplicationReplaced", "application": "asterisk-cube"})
    await until(lambda: sup.connects == 2)


def test_base_url_normalisation():
    assert normalize_base_url("http://h:8088") == "http://h:8088/"
    assert normalize_base_url("http://h:8088/ari/") == "http://h:8088/"
    assert normalize_base_url("https://pbx.example/asterisk/ari") == "https://pbx.example/asterisk/"
    with pytest.raises(ValueError):
        normalize_base_url("h:8088")
