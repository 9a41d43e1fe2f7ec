"""Server-sent events: the agent's fresh view whenever the distributor says it changed.

``GET /desk/events`` streams::

    retry: 2000

    event: view
    data: {...AgentView.to_dict()...}

    : ping

The first message is always the full current view (so a browser that reconnects after a
network drop or a restart is up to date at once); after that one ``view`` message per
burst of ``AgentViewChanged`` events for this agent (bursts are coalesced: the view is
read once after draining what is queued). When only the queue of one of its lines
changed (``DeskLineCount``: an arrival, an offer accepted elsewhere) the stream sends just
that count instead of the whole view (issue #19)::

    event: count
    data: {"line_id": 3, "waiting": 2, "longest_wait_s": 12.5}

the same text for every desk with the same count, serialised once. A comment line
every ``heartbeat`` seconds keeps proxies from closing an idle stream. Nothing polls:
the stream waits on the hub.
A client that goes away is noticed by Starlette's disconnect listener, which cancels the
stream (and so closes its hub subscription). A session that ends meanwhile (logout
elsewhere, deactivation, new password: ``signed_in`` says so, checked every second and
before every view) ends the stream with ``event: refused`` ``login_required``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..acd.contract import (
    AgentDesk,
    AgentView,
    AgentViewChanged,
    DeskLineCount,
    LineCount,
    Refused,
)
from ..events import Event, EventHub
from ..logs import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 2000
_SHUTDOWN_CHECK = 1.0  # how often an idle stream looks whether the server is stopping


def sse_message(event: str, data: Any) -> str:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    lines = "".join(f"data: {line}\n" for line in body.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@functools.lru_cache(maxsize=256)
def count_message(count: LineCount) -> str:
    """A line's queue count as an SSE message; the desks showing the same count share one
    ``LineCount``, so it is serialised once per change, not once per desk."""
    return sse_message(
        "count",
        {
            "line_id": count.line_id,
            "waiting": count.waiting,
            "longest_wait_s": count.longest_wait_s,
        },
    )


#: the last message of a stream whose session ended (the page goes to the login form)
LOGIN_REQUIRED = sse_message("refused", {"error": "login_required", "detail": ""})


def _stopping(request: Request) -> bool:
    cube = getattr(request.app.state, "cube", None)
    server = getattr(cube, "web", None)
    return bool(getattr(server, "should_exit", False))


async def view_stream(
    request: Request,
    desk: AgentDesk,
    hub: EventHub,
    agent_id: int,
    *,
    render: Callable[[AgentView], dict[str, Any]],
    heartbeat: float = HEARTBEAT_SECONDS,
    signed_in: Callable[[], Awaitable[bool]] | None = None,
    superseded: asyncio.Event | None = None,
) -> AsyncIterator[str]:
    """The agent's view, then again on every change, until the client leaves, the server
    stops or ``superseded`` is set (a newer stream of the same agent took its place)."""
    sub = hub.subscribe(  # only this agent's changes wake the stream (issue #19)
        AgentViewChanged,
        DeskLineCount,
        maxsize=64,
        name=f"desk-sse-{agent_id}",
        agent_id=agent_id,
    )

    async def session_over() -> bool:
        return signed_in is not None and not await signed_in()

    try:
        yield f"retry: {RETRY_MS}\n\n"
        # subscribed before reading: a change after this read arrives as an event
        try:
            view = await desk.view(agent_id)
        except Refused as exc:
            yield sse_message("refused", {"error": exc.reason, "detail": exc.message})
            return
        yield sse_message("view", render(view))
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while True:
            try:
                event = await asyncio.wait_for(sub.get(), timeout=_SHUTDOWN_CHECK)
            except TimeoutError:
                if _stopping(request) or (superseded is not None and superseded.is_set()):
                    return
                if await session_over():
                    yield LOGIN_REQUIRED
                    return
                if loop.time() - last_sent >= heartbeat:
                    last_sent = loop.time()
                    yield ": ping\n\n"
                continue
            except EOFError:  # hub closed: the server is stopping
                return
            # coalesce a burst: drain what is queued, then read the view once (it holds
            # every count) or, if only queues changed, send each line's last count
            relevant = False
            counts: dict[int, LineCount] = {}
            item: Event | None = event
            while item is not None:
                if getattr(item, "agent_id", None) == agent_id:
                    if isinstance(item, DeskLineCount):
                        counts[item.count.line_id] = item.count
                    elif isinstance(item, AgentViewChanged):
                        relevant = True
                item = sub.get_nowait()
            if sub.take_stale():
                relevant = True  # we lost events: send the full view anyway
            if superseded is not None and superseded.is_set():
                return
            if not relevant:
                if counts:
                    last_sent = loop.time()
                    yield "".join(count_message(count) for count in counts.values())
                continue
            if await session_over():
                yield LOGIN_REQUIRED
                return
            try:
                view = await desk.view(agent_id)
            except Refused as exc:
                yield sse_message("refused", {"error": exc.reason, "detail": exc.message})
                return
            last_sent = loop.time()
            yield sse_message("view", render(view))
    finally:
        sub.close()


class StreamSlots:
    """At most ``per_user`` open event streams per user (issue #12).

    Each stream costs a hub or feed subscription and a render per change, so one login
    must not buy hundreds: beyond the limit a stream is refused (429), which costs less
    than starting it; a closed tab frees its place as soon as its connection ends.
    :meth:`take` returns the stream's place, an event kept as a hook to end it from outside.
    """

    def __init__(self, per_user: int, note: Callable[..., object], refused_event: str) -> None:
        self.per_user = per_user
        self.note = note  # a rate-limited log (limits.RateLimitedLog)
        self.refused_event = refused_event
        self.open: dict[Any, list[asyncio.Event]] = {}  # user -> its open streams

    def take(self, user: Any) -> asyncio.Event | None:
        streams = self.open.setdefault(user, [])
        if len(streams) >= self.per_user:
            self.note(self.refused_event, user=user, open=len(streams))
            return None
        place = asyncio.Event()
        streams.append(place)
        return place

    def release(self, user: Any, place: asyncio.Event) -> None:
        streams = self.open.get(user, [])
        if place in streams:
            streams.remove(place)
        if not streams:
            self.open.pop(user, None)


def sse_response(stream: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )
