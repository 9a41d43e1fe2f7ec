"""The in-process event hub: fan-out, type filters, bounded queues that drop the oldest."""

import asyncio
from dataclasses import dataclass

import pytest

from asterisk_cube.events import (
    AriConnected,
    Event,
    EventHub,
    StasisEnded,
    StasisStarted,
)


@dataclass(frozen=True)
class Tick(Event):
    n: int


def started(channel_id: str = "c1") -> StasisStarted:
    return StasisStarted(channel_id=channel_id, channel_name="PJSIP/x-1", args=("inbound", "3"))


async def test_every_subscriber_gets_what_it_asked_for():
    hub = EventHub()
    everything = hub.subscribe()
    calls = hub.subscribe(StasisStarted, StasisEnded)
    hub.publish(AriConnected(url="http://x", app="a"))
    hub.publish(started())
    hub.publish(StasisEnded(channel_id="c1"))
    assert [type(e) for e in (await everything.get(), await everything.get())] == [
        AriConnected,
        StasisStarted,
    ]
    assert isinstance(await calls.get(), StasisStarted)
    assert isinstance(await calls.get(), StasisEnded)
    assert calls.get_nowait() is None


async def test_publish_never_blocks_and_a_slow_subscriber_loses_the_oldest():
    hub = EventHub()
    slow = hub.subscribe(Tick, maxsize=3, name="browser")
    fast = hub.subscribe(Tick, maxsize=100)
    for n in range(10):
        hub.publish(Tick(n=n))  # synchronous: returns at once even though nobody reads
    assert slow.stale and slow.dropped == 7
    assert [(await slow.get()).n for _ in range(3)] == [7, 8, 9]
    assert slow.take_stale() is True
    assert slow.take_stale() is False  # cleared once read
    assert [(await fast.get()).n for _ in range(10)] == list(range(10))
    assert not fast.stale


async def test_closing_ends_iteration_and_unsubscribes():
    hub = EventHub()
    sub = hub.subscribe(Tick)
    got = []

    async def reader():
        async for event in sub:
            got.append(event.n)

    task = asyncio.create_task(reader())
    hub.publish(Tick(n=1))
    hub.publish(Tick(n=2))
    await asyncio.sleep(0)
    hub.close()
    await asyncio.wait_for(task, 1)
    assert got == [1, 2]
    assert hub.subscribers == ()
    hub.publish(Tick(n=3))  # nobody listens: fine
    with pytest.raises(EOFError):
        await sub.get()


async def test_context_manager_unsubscribes():
    hub = EventHub()
    async with hub.subscribe() as sub:
        assert hub.subscribers == (sub,)
    assert hub.subscribers == ()


def test_events_serialise_with_a_kind():
    event = started()
    data = event.to_dict()
    assert data["kind"] == "stasis_started"
    assert data["channel_id"] == "c1"
    assert data["args"] == ("inbound", "3")
    assert isinstance(data["ts"], float)
    assert Tick(n=1).kind == "tick"


def test_only_events_can_be_published():
    with pytest.raises(TypeError):
        EventHub().publish({"type": "nope"})
