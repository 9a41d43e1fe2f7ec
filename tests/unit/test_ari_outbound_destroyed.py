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
