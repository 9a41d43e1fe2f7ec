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


class Subscription:
    """One consumer's bounded queue. Iterate it, or ``await get()``."""

    def __init__(
        self, hub: EventHub, types: tuple[type[Event], ...], maxsize: int, name: str
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._hub = hub
        self.types = types
        self.name = name
        self._queue: asyncio.Queue[Event | _Closed] = asyncio.Queue(maxsize)
        self.stale = False
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        return not self.types or isinstance(event, self.types)

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
        self._by_type: dict[type[Event], tuple[Subscription, ...]] = {}
        self.published = 0

    def subscribe(
        self,
        *types: type[Event],
        maxsize: int = DEFAULT_QUEUE_SIZE,
        name: str = "",
    ) -> Subscription:
        """A new subscription to events of ``types`` (all events if none given)."""
        sub = Subscription(self, tuple(types), maxsize, name or f"sub{len(self._subs) + 1}")
        self._subs.append(sub)
        self._by_type.clear()
        return sub

    def _subscribers_of(self, event_type: type[Event]) -> tuple[Subscription, ...]:
        subs = self._by_type.get(event_type)
        if subs is None:
            subs = tuple(
                sub for sub in self._subs if not sub.types or issubclass(event_type, sub.types)
            )
            self._by_type[event_type] = subs
        return subs

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every interested subscriber. Never blocks."""
        if not isinstance(event, Event):
            raise TypeError(f"not an Event: {event!r}")
        self.published += 1
        for sub in self._subscribers_of(type(event)):  # a tuple: safe if one unsubscribes
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
