"""HTTP connections that cannot hold ``serve`` hostage (issue #12 item 2, slowloris).

uvicorn (h11) waits for a request's header without a deadline: a peer that connects and
sends half a header, or a byte now and then, keeps its connection (and a file descriptor)
for ever, and enough of them exhaust the open-file limit, after which nothing (neither a
browser nor Asterisk's FastAGI connection) is accepted. :func:`guarded_protocol` returns
uvicorn's h11 protocol with two bounds:

* **header deadline**: a connection gets ``header_timeout`` seconds from its first byte
  (or from accepting it) to complete a request header; an idle keep-alive connection
  that starts a new request gets the same. Then it is closed.
* **connection cap**: at ``max_connections`` open connections, a new one evicts the
  oldest connection that has no request in flight (still sending a header, or idle
  between requests); if every connection is busy with a request (e.g. the desktops'
  event streams), the new one is closed at once.

Requests already being answered (API calls, server-sent event streams) are never cut.

:class:`BodyDeadline` bounds the rest of the request: once its header is complete, a body
gets ``body_timeout`` seconds to arrive whole (a peer that announces a body and sends it a
byte at a time would otherwise hold the connection, a request task and a descriptor for
ever, as a busy connection the cap cannot evict). The body is read before the app sees
the request, so a late one is answered 408 and closed without reaching a handler.

Every such event is logged at most once per interval
(:class:`~asterisk_cube.limits.RateLimitedLog`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn's C parser (the [standard] extra): about half the CPU per request of h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; h11 is the fallback
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

from ..limits import RateLimitedLog
from ..logs import get_logger

log = get_logger(__name__)

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
MAX_CONNECTIONS = 4096
BODY_BUFFER = 1024 * 1024  # read ahead at most this much; the routes' own limits are lower

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ConnectionGuard:
    """The open connections of one web server, oldest first, and the counters."""

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        if max_connections < 1 or header_timeout <= 0 or body_timeout <= 0:
            raise ValueError("max_connections and the timeouts must be positive")
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.open: dict[GuardedProtocol, None] = {}  # insertion order = age
        self.timed_out = 0
        self.body_timed_out = 0
        self.evicted = 0
        self.refused = 0
        self.note = RateLimitedLog(log.warning)

    def admit(self, conn: GuardedProtocol) -> bool:
        """Register a new connection; False if it must be closed (all others busy)."""
        if len(self.open) >= self.max_connections:
            victim = next((c for c in self.open if c.idle), None)
            if victim is None:
                self.refused += 1
                self.note("web_connection_refused", open=len(self.open), refused_total=self.refused)
                return False
            self.evicted += 1
            self.note("web_connection_evicted", open=len(self.open), evicted_total=self.evicted)
            victim.drop()
        self.open[conn] = None
        return True

    def closed(self, conn: GuardedProtocol) -> None:
        self.open.pop(conn, None)

    def stats(self) -> dict[str, int]:
        return {
            "open": len(self.open),
            "max": self.max_connections,
            "header_timeouts": self.timed_out,
            "body_timeouts": self.body_timed_out,
            "evicted": self.evicted,
            "refused": self.refused,
        }


if TYPE_CHECKING:  # the type checker sees the mixin as the h11 protocol it extends
    _Protocol = H11Protocol
else:
    _Protocol = object


class GuardedProtocol(_Protocol):
    """uvicorn's HTTP protocol with a header deadline and a place under a connection cap
    (a mixin over either of uvicorn's protocols: both keep ``cycle`` and ``transport``)."""

    guard: ConnectionGuard  # set by guarded_protocol()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """No request in flight: still sending a header, or between requests."""
        return self.cycle is None or self.cycle.response_complete

    def drop(self) -> None:
        self._disarm()
        self.guard.closed(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.guard.header_timeout, self._header_timeout
            )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.idle:
            return
        self.guard.timed_out += 1
        self.guard.note(
            "web_header_timeout",
            client=self.client[0] if self.client else "-",
            seconds=self.guard.header_timeout,
            total=self.guard.timed_out,
        )
        self.drop()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            self.connections.discard(self)
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.idle:
            self._arm()  # a new request starts: its header has a deadline
        super().data_received(data)
        if not self.idle:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.closed(self)
        super().connection_lost(exc)


def guarded_protocol(guard: ConnectionGuard, parser: str = "auto") -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``guard``; ``parser``
    is "httptools", "h11" or "auto" (httptools when installed)."""
    base: type = H11Protocol
    if parser != "h11" and HttpToolsProtocol is not None:
        base = HttpToolsProtocol
    return type("Guarded" + base.__name__, (GuardedProtocol, base), {"guard": guard})


def _announces_body(scope: Message) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class BodyDeadline:
    """ASGI middleware: a request body arrives whole within ``guard.body_timeout`` or 408."""

    def __init__(self, app: Callable[..., Awaitable[None]], guard: ConnectionGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _announces_body(scope):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        try:
            async with asyncio.timeout(self.guard.body_timeout):
                size = 0
                while True:
                    message = await receive()
                    read.append(message)
                    size += len(message.get("body", b""))
                    if not message.get("more_body") or size > BODY_BUFFER:
                        break
        except TimeoutError:
            await self._too_slow(scope, send)
            return
        pending = iter(read)

        async def replay() -> Message:
            message = next(pending, None)
            return message if message is not None else await receive()

        await self.app(scope, replay, send)

    async def _too_slow(self, scope: Message, send: Send) -> None:
        guard = self.guard
        guard.body_timed_out += 1
        client = scope.get("client")
        guard.note(
            "web_body_timeout",
            client=client[0] if client else "-",
            seconds=guard.body_timeout,
            total=guard.body_timed_out,
        )
        body = b"request body too slow\n"
        await send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
