"""An inbound agent is free only once its phone is: the ACD gives an agent back (and offers
it the next call) only once the agent's hung-up leg has left Asterisk, not when the hang-up
was asked for (``DELETE /channels`` returns before the leg is gone). With no wrap-up the
next call went to a phone whose last leg was still up. The same on the real sandbox
Asterisk: tests/integration/test_inbound_one_leg.py."""

from __future__ import annotations

import asyncio

import pytest
from fakes.ari import FakeSupervisor, RecordingClient
from support.fakes import FakeTelephony
from test_distributor import make, settle, start_work
from test_distributor import world as distributor_world

from asterisk_cube.ari import inbound
from asterisk_cube.ari.inbound import InboundApp
from asterisk_cube.config import Settings


@pytest.fixture
def world(tmp_path):
    return distributor_world.__wrapped__(tmp_path)


class LingeringTelephony(FakeTelephony):
    """Asterisk as it is: a hung-up agent leg stays until its ``ChannelDestroyed``
    (``destroy``), and ``release`` returns only once the legs it hung up are gone."""

    def __init__(self) -> None:
        super().__init__()
        self.up: dict[str, asyncio.Future] = {}

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        channel = await super().connect_agent(call_id, channel_id, endpoint, tone)
        if channel:
            self.up[channel] = asyncio.get_running_loop().create_future()
        return channel

    def leg_up(self, channel_id):
        return channel_id in self.up and not self.up[channel_id].done()

    async def release(self, call_id, channels):
        await super().release(call_id, channels)
        await asyncio.gather(*(self.up[ch] for ch in channels if ch in self.up))

    def destroy(self, channel_id):
        self.up[channel_id].set_result(None)


async def two_calls_for_one_agent(world):
    """Ann (service line: no wrap-up) talks on the first call; a second caller waits."""
    _, ids, lines = world
    tel = LingeringTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    first = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], first)
    await settle()
    second = d.call_arrived("ch2", lines["100"], "91000002")
    assert d.state.offer_of(ids["ann"]) is None  # she is busy
    return d, tel, ids["ann"], first, second


async def assert_offered_only_once_the_leg_is_gone(d, tel, ann, first, second):
    await settle()
    assert f"agent-{first}" in tel.hung_up
    # Was: ready at once, the second call offered while the first leg was still up.
    assert d.state.offer_of(ann) is None
    view = await d.view(ann)
    assert view.state == "busy" and view.call.state == "ended"  # the desk tells the truth
    tel.destroy(f"agent-{first}")
    await settle()
    offered = d.state.offer_of(ann)
    assert offered is not None and offered.call_id == second


async def test_caller_hangup_frees_the_agent_once_its_leg_is_gone(world):
    d, tel, ann, first, second = await two_calls_for_one_agent(world)
    d.channel_left("ch1")  # the caller hung up
    await assert_offered_only_once_the_leg_is_gone(d, tel, ann, first, second)


async def test_desk_hangup_frees_the_agent_once_its_leg_is_gone(world):
    d, tel, ann, first, second = await two_calls_for_one_agent(world)
    await d.hangup(ann, first)  # the desk's Hang up
    await assert_offered_only_once_the_leg_is_gone(d, tel, ann, first, second)


async def test_the_agent_hanging_up_its_phone_frees_it_at_once(world):
    """Its leg's StasisEnd is the news: no wait (the caller's leg is not the phone's)."""
    d, _tel, ann, first, second = await two_calls_for_one_agent(world)
    d.channel_left(f"agent-{first}")
    await settle()
    offered = d.state.offer_of(ann)
    assert offered is not None and offered.call_id == second


class RingingTelephony(LingeringTelephony):
    """The agent's phone rings (reported as the call's leg) and is never answered."""

    def __init__(self, d=None) -> None:
        super().__init__()
        self.d = d

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        ring = f"ring-{call_id}"
        self.d.leg_originated(call_id, ring)
        self.up[ring] = asyncio.get_running_loop().create_future()
        await asyncio.Event().wait()  # rings until the test ends


async def test_caller_gone_while_the_phone_rings_frees_the_agent_once_the_ring_is_gone(world):
    _, ids, lines = world
    tel = RingingTelephony()
    d = make(world, tel)
    tel.d = d
    ann = ids["ann"]
    await start_work(d, ann, [lines["100"]])
    first = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ann, first)
    await settle()
    second = d.call_arrived("ch2", lines["100"], "91000002")
    d.channel_left("ch1")  # the caller gives up while the agent's phone rings
    await settle()
    assert f"ring-{first}" in tel.hung_up
    assert d.state.offer_of(ann) is None  # was: offered while the ringing leg was still up
    tel.destroy(f"ring-{first}")
    await settle()
    offered = d.state.offer_of(ann)
    assert offered is not None and offered.call_id == second


# ------------------------------------------------------------ the ARI adapter


def app_with(client: RecordingClient) -> InboundApp:
    class Distributor:
        calls: dict = {}

        def leg_originated(self, call_id, channel_id):
            return True

    return InboundApp(Settings(), FakeSupervisor(client), Distributor(), ring_timeout=1)


async def test_release_returns_when_the_agent_legs_channel_destroyed_comes():
    client = RecordingClient()
    app = app_with(client)
    app._legs.watch("agent-leg")  # rung by _ring
    release = asyncio.ensure_future(app.release(7, ["caller", "agent-leg"]))
    await settle()
    assert ("channels.hangup", {"channelId": "agent-leg"}) in client.calls
    assert app.leg_up("agent-leg") and not release.done()  # hung up, not gone yet
    await app.on_event({"type": "ChannelDestroyed", "channel": {"id": "agent-leg"}}, client)
    await asyncio.wait_for(release, 1)
    assert not app.leg_up("agent-leg")
    # an event, not polling: no GET of the channel
    assert [op for op, _ in client.calls if op == "channels.get"] == []


async def test_release_gives_up_on_a_lost_channel_destroyed(monkeypatch):
    monkeypatch.setattr(inbound, "LEG_GONE_TIMEOUT", 0.05)
    client = RecordingClient()
    app = app_with(client)
    app._legs.watch("agent-leg")
    await asyncio.wait_for(app.release(8, ["agent-leg"]), 1)  # bounded, logged
    assert not app.leg_up("agent-leg")
