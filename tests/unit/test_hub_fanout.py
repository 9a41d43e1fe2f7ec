"""Issue #19: the hub finds an event's subscribers by its type once (not by asking every
subscription per event), and stays right as subscriptions come and go."""

from __future__ import annotations

from dataclasses import dataclass

from asterisk_cube.events import Event, EventHub, Subscription


@dataclass(frozen=True)
class Tick(Event):
    n: int


@dataclass(frozen=True)
class SubTick(Tick):
    pass


@dataclass(frozen=True)
class Other(Event):
    pass


def test_publish_asks_no_subscription_per_event(monkeypatch):
    hub = EventHub()
    others = [hub.subscribe(Other) for _ in range(20)]
    ticks = hub.subscribe(Tick)
    asked = []
    real = Subscription.wants
    monkeypatch.setattr(Subscription, "wants", lambda self, e: asked.append(e) or real(self, e))
    for n in range(10):
        hub.publish(Tick(n=n))
    assert asked == []  # was: 21 subscriptions asked for each of the 10 events
    assert [ticks.get_nowait().n for _ in range(10)] == list(range(10))
    assert all(sub.get_nowait() is None for sub in others)


def test_subscribers_that_come_and_go_after_a_publish_are_seen():
    hub = EventHub()
    first = hub.subscribe(Tick)
    hub.publish(Tick(n=1))
    later = hub.subscribe(Tick)
    everything = hub.subscribe()
    hub.publish(SubTick(n=2))  # a subclass reaches subscribers of its base
    assert [first.get_nowait().n, first.get_nowait().n] == [1, 2]
    assert later.get_nowait().n == 2 and later.get_nowait() is None
    assert everything.get_nowait().n == 2
    first.close()
    hub.publish(Tick(n=3))
    assert first.get_nowait() is None  # closed: nothing more
    assert later.get_nowait().n == 3
    assert hub.subscribers == (later, everything)
