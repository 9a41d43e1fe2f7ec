"""Issue #19: the hub finds an event's subscribers by its type once (not by asking every
subscription per event), and stays right as subscriptions come and go."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

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


def test_a_matched_subscription_gets_only_its_value_and_others_are_not_woken():
    hub = EventHub()
    desks = {n: hub.subscribe(Tick, n=n) for n in range(20)}
    every = hub.subscribe(Tick)
    for n in (3, 3, 7):
        hub.publish(Tick(n=n))
    hub.publish(Other())
    assert desks[3].qsize() == 2 and desks[7].qsize() == 1
    assert sum(sub.qsize() for sub in desks.values()) == 3  # not 20 per event
    assert every.qsize() == 3
    assert desks[3].wants(Tick(n=3)) and not desks[3].wants(Tick(n=4))
    desks[3].close()
    hub.publish(Tick(n=3))
    assert every.qsize() == 4 and hub.subscribe(Tick, n=3).qsize() == 0


def test_a_match_needs_one_field_of_named_types():
    hub = EventHub()
    for bad in ({"n": 1, "m": 2}, {}):
        with pytest.raises(ValueError):
            hub.subscribe(**bad) if bad else hub.subscribe(n=1)
