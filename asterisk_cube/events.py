"""A small in-process event hub.

Adapters (ARI, AGI, AMI, the dialer, ...) *publish* typed events (dataclasses derived from
:class:`Event`); consumers (web push, the panel, reports) *subscribe* and read them from
a bounded asyncio queue::

    hub.publish(StasisStarted(channel_id="1730.5", channel_name="PJSIP/x", args=("inbound",)))

    async with hub.subscribe(StasisStarted, StasisEnded) as sub:
        async for event in sub:
            if sub.take_stale():
                ...  # we lost events: reload the full state, then carry on
            handle(event)

A consumer that wants one value of one field subscribes with it, e.g. one agent's desktop:
``hub.subscribe(AgentViewChanged, agent_id=7)``; an event for another agent then neither
enters its queue nor wakes it (issue #19: with 20 desktops open, a change on a line that
shows on every desktop cost 20 x 20 queue puts and wake-ups; now 20).

``publish`` never blocks and never awaits: when a subscriber's queue is full the *oldest*
event is dropped and the subscription is marked *stale* (``sub.stale``, ``sub.dropped``),
so one slow browser cannot stall the app. A stale consumer should re-read the current
state from its source of truth (DB / ARI) instead of trusting the deltas.

Define new event types next to the code that publishes them or here if several places
share them; keep them flat and JSON-friendly (``event.to_dict()`` is what web push sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .logs import get_logger

log = get_logger(__name__)

DEFAULT_QUEUE_SIZE = 256


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Event:
    """Base of all hub events. ``ts`` is the wall-clock time of publication."""

    ts: float = field(default_factory=time.time, kw_only=True)

    kind: ClassVar[str] = "event"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = _snake(cls.__name__)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = self.kind
        return out


# --- events published by the runtime itself -------------------------------------------


@dataclass(frozen=True)
class AriConnected(Event):
    url: str
    app: str


@dataclass(frozen=True)
class AriDisconnected(Event):
    reason: str
    retry_in: float  # seconds until the next connection attempt


@dataclass(frozen=True)
class AriResynced(Event):
    channel_ids: tuple[str, ...]
    bridge_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StasisStarted(Event):
    channel_id: str
    channel_name: str
    args: tuple[str, ...]
    caller_number: str = ""
    caller_name: str = ""
    exten: str = ""


@dataclass(frozen=True)
class StasisEnded(Event):
    channel_id: str


@dataclass(frozen=True)
class AgiSessionEnded(Event):
    route: str
    channel: str
    unique_id: str
    outcome: str  # "ok", "hangup", "error", "no_route"
    duration: float


# --- the hub ---------------------------------------------------------------------------


class _Closed:
    pass


_CLOSED = _Closed()
_MISSING = object()

# per event type: the subscriptions without a match, and those with one by (field, value)
_Route = tuple[tuple["Subscription", ...], dict[str, dict[Any, list["Subscription"]]]]


class Subscription:
    """One consumer's bounded queue. Iterate it, or ``await get()``."""

    def __init__(
        self,
        hub: EventHub,
        types: tuple[type[Event], ...],
        maxsize: int,
        name: str,
        match: tuple[str, Any] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._hub = hub
        self.types = types
        self.match = match  # (field, value): only events whose field has that value
        self.name = name
        self._queue: asyncio.Queue[Event | _Closed] = asyncio.Queue(maxsize)
        self.stale = False
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        if self.types and not isinstance(event, self.types):
            return False
        return self.match is None or getattr(event, self.match[0], _MISSING) == self.match[1]

    def _offer(self, event: Event | _Closed) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()  # drop the oldest
                if not isinstance(event, _Closed):
                    self.dropped += 1
                    if not self.stale:
                        log.warning("hub_subscriber_stale", subscriber=self.name)
                    self.stale = True

    def take_stale(self) -> bool:
        """True once after events were dropped; clears the flag."""
        stale, self.stale = self.stale, False
        return stale

    def qsize(self) -> int:
        return self._queue.qsize()

    async def get(self) -> Event:
        """The next event; raises :class:`EOFError` once the subscription is closed."""
        if self.closed and self._queue.empty():
            raise EOFError("subscription closed")
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self.closed = True
            raise EOFError("subscription closed")
        return item

    def get_nowait(self) -> Event | None:
        """The next event if one is waiting, else None."""
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if isinstance(item, _Closed):
            self.closed = True
            return None
        return item

    def close(self) -> None:
        """Stop receiving; a reader blocked in ``get`` wakes up with EOFError."""
        if not self.closed:
            self._hub._remove(self)
            self._offer(_CLOSED)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.get()
            except EOFError:
                return

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Fan-out of events to subscribers. Use from the event loop's thread only."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        # event type -> the subscriptions that want it, in subscription order; filled on
        # first publish of a type, emptied when a subscription comes or goes (issue #19:
        # every AMI change asked each of ~20 desk subscriptions whether it wanted it)
        self._by_type: dict[type[Event], _Route] = {}
        self.published = 0

    def subscribe(
        self,
        *types: type[Event],
        maxsize: int = DEFAULT_QUEUE_SIZE,
        name: str = "",
        **match: Any,
    ) -> Subscription:
        """A new subscription to events of ``types`` (all events if none given); with one
        ``field=value``, only those of them whose field has that value."""
        if len(match) > 1 or (match and not types):
            raise ValueError("match one field, of named event types")
        key = next(iter(match.items()), None)
        sub = Subscription(self, tuple(types), maxsize, name or f"sub{len(self._subs) + 1}", key)
        self._subs.append(sub)
        self._by_type.clear()
        return sub

    def _route(self, event_type: type[Event]) -> _Route:
        route = self._by_type.get(event_type)
        if route is None:
            subs = [s for s in self._subs if not s.types or issubclass(event_type, s.types)]
            keyed: dict[str, dict[Any, list[Subscription]]] = {}
            for sub in subs:
                if sub.match is not None:
                    name, value = sub.match
                    keyed.setdefault(name, {}).setdefault(value, []).append(sub)
            route = (tuple(s for s in subs if s.match is None), keyed)
            self._by_type[event_type] = route
        return route

    def listening(self, event_type: type[Event], name: str) -> set[Any] | None:
        """The values of ``name`` that subscriptions to ``event_type`` match; None if a
        subscription takes every such event (then every value is listened to). Lets a
        publisher skip building events nobody would get."""
        plain, keyed = self._route(event_type)
        if plain:
            return None
        return {value for value, subs in keyed.get(name, {}).items() if subs}

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every interested subscriber. Never blocks."""
        if not isinstance(event, Event):
            raise TypeError(f"not an Event: {event!r}")
        self.published += 1
        plain, keyed = self._route(type(event))
        for sub in plain:  # a tuple: safe if one unsubscribes meanwhile
            sub._offer(event)
        for name, by_value in keyed.items():
            try:
                matched = by_value.get(getattr(event, name, _MISSING), ())
            except TypeError:  # an unhashable value matches no subscription
                continue
            for sub in tuple(matched):
                sub._offer(event)

    def publish_many(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    @property
    def subscribers(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._by_type.clear()

    def close(self) -> None:
        """Close every subscription (shutdown): their readers end their loops."""
        for sub in list(self._subs):
            sub.close()
