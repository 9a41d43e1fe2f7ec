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
Both events are logged at most once per interval (:class:`~asterisk_cube.limits.RateLimitedLog`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..limits import RateLimitedLog
from ..logs import get_logger

log = get_logger(__name__)

HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS = 4096


class ConnectionGuard:
    """The open connections of one web server, oldest first, and the counters."""

    def __init__(
        self, max_connections: int = MAX_CONNECTIONS, header_timeout: float = HEADER_TIMEOUT
    ) -> None:
        if max_connections < 1 or header_timeout <= 0:
            raise ValueError("max_connections and header_timeout must be positive")
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open: dict[GuardedH11Protocol, None] = {}  # insertion order = age
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0
        self.note = RateLimitedLog(log.warning)

    def admit(self, conn: GuardedH11Protocol) -> bool:
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

    def closed(self, conn: GuardedH11Protocol) -> None:
        self.open.pop(conn, None)

    def stats(self) -> dict[str, int]:
        return {
            "open": len(self.open),
            "max": self.max_connections,
            "header_timeouts": self.timed_out,
            "evicted": self.evicted,
            "refused": self.refused,
        }


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a place under a connection cap."""

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


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``guard``."""
    return type("GuardedH11", (GuardedH11Protocol,), {"guard": guard})
