"""``OutboundApp.wait_destroyed``: a hung-up leg counts as gone from Asterisk only when
Asterisk says so (its ``ChannelDestroyed``, or ``GET /channels/{id}`` answering 404),
not when it left the app (``StasisEnd``) or the hang-up request returned."""

import asyncio

from fakes.ari import FakeSupervisor

from asterisk_cube.ari.client import AriHttpError
from asterisk_cube.ari.outbound import OutboundApp
from asterisk_cube.config import Settings


class Channels:
    """Asterisk's channels as ``GET /channels/{id}`` sees them."""

    def __init__(self, alive: set[str]):
        self.alive = alive
        self.gets = 0

    async def get(self, channelId):
        self.gets += 1
        if channelId not in self.alive:
            raise AriHttpError("GET", f"channels/{channelId}", 404, "Channel not found")
        return {"id": channelId, "state": "Up"}


class Client:
    def __init__(self, alive: set[str]):
        self.channels = Channels(alive)


def app_with(alive: set[str]) -> tuple[OutboundApp, Client]:
    client = Client(alive)
    return OutboundApp(Settings(), FakeSupervisor(client)), client


async def test_a_leg_that_left_the_app_but_still_exists_is_not_destroyed():
    app, _client = app_with({"cube-da-1"})
    app._watch("cube-da-1")
    await app.on_event({"type": "StasisEnd", "channel": {"id": "cube-da-1"}}, None)
    assert app.gone("cube-da-1").done()  # the dialer's "gone": it left the app
    assert await app.wait_destroyed("cube-da-1", timeout=0.2) is False


async def test_channel_destroyed_ends_the_wait():
    app, _client = app_with({"cube-da-1"})  # GET still finds it: only the event ends it
    app._watch("cube-da-1")

    async def destroyed_later():
        await asyncio.sleep(0.1)
        await app.on_event({"type": "ChannelDestroyed", "channel": {"id": "cube-da-1"}}, None)

    later = asyncio.create_task(destroyed_later())
    assert await app.wait_destroyed("cube-da-1", timeout=5) is True
    await later


async def test_a_leg_asterisk_no_longer_has_is_destroyed_without_the_event():
    alive = {"cube-da-1"}
    app, _client = app_with(alive)
    app._watch("cube-da-1")
    asyncio.get_running_loop().call_later(0.1, alive.discard, "cube-da-1")
    assert await app.wait_destroyed("cube-da-1", timeout=5) is True


async def test_no_channel_or_no_ari_is_nothing_to_wait_for():
    app, _client = app_with(set())
    assert await app.wait_destroyed(None) is True
    assert await OutboundApp(Settings(), FakeSupervisor(None)).wait_destroyed("cube-da-1")


class Endpoints:
    """``GET /endpoints/PJSIP/agent01``: the phone's channels, as Asterisk lists them."""

    def __init__(self, legs: set[str]):
        self.legs = legs

    async def get(self, tech, resource):
        return {"technology": tech, "resource": resource, "channel_ids": sorted(self.legs)}


class RingClient:
    def __init__(self, legs: set[str]):
        self.endpoints = Endpoints(legs)
        self.originated: list[tuple[str, float]] = []
        self.channels = self

    async def originate(self, **params):
        self.originated.append((params["channelId"], asyncio.get_running_loop().time()))


async def test_a_phone_is_rung_only_once_its_last_leg_is_gone():
    """An inbound call that ended with no wrap-up leaves its agent ready before the agent
    leg's hang-up is even sent: the dialer's ring waits for that leg to leave."""
    legs = {"inbound-leg"}
    client = RingClient(legs)
    app = OutboundApp(Settings(), FakeSupervisor(client))
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, legs.clear)
    started = loop.time()
    ring = asyncio.create_task(
        app.ring_agent(1, "cube-da-1", "PJSIP/agent01", auto_answer=True, timeout=2)
    )
    while not client.originated:
        await asyncio.sleep(0.01)
    assert client.originated[0][1] - started >= 0.1  # not before the last leg left
    await app.on_event(
        {"type": "StasisStart", "args": ["dial-agent", "1"], "channel": {"id": "cube-da-1"}}, None
    )
    assert await ring is True


async def test_a_phone_busy_for_the_whole_budget_is_not_rung():
    client = RingClient({"personal-call"})
    app = OutboundApp(Settings(), FakeSupervisor(client))
    ok = await app.ring_agent(1, "cube-da-1", "PJSIP/agent01", auto_answer=True, timeout=0.2)
    assert ok is False and client.originated == []


async def test_a_dial_string_is_rung_without_asking():
    client = RingClient({"something"})
    app = OutboundApp(Settings(), FakeSupervisor(client))
    ring = asyncio.create_task(
        app.ring_agent(1, "cube-da-1", "PJSIP/agent01@node-b", auto_answer=True, timeout=0.2)
    )
    assert await ring is False  # nobody answers here
    assert [ch for ch, _at in client.originated] == ["cube-da-1"]
