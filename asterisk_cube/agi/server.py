"""FastAGI server: panoramisk's ``fast_agi.Application`` with a guarded connection handler.

panoramisk's own handler reads the AGI environment with ``while b"\\n\\n" not in buffer:
buffer += await reader.read(...)``: a peer that connects and closes before the blank line
(a port scan, a TCP health check) makes that loop spin on empty reads forever and freezes
the whole event loop at 100% CPU (also on upstream master). :class:`AgiServer` keeps
panoramisk's route table but replaces the handler: the environment is read with
``readuntil(b"\\n\\n")`` under a timeout (one watchdog task for all connections) and a size
limit, and every read of a command reply treats EOF, Asterisk's asynchronous ``HANGUP`` line
and ``511`` (dead channel) as the end of the session.

Nothing a peer does can hold the server (issue #12 item 3): a command's reply is awaited
``command_timeout`` seconds (the same watchdog; a route can pass a longer ``timeout`` for one
command), at most ``max_sessions`` sessions are open (at the cap a new connection evicts the
session that has waited longest for its environment or a reply, else it is refused), and
garbage (bad environments, unknown routes, error replies, timeouts) is logged at most once
per interval per kind, with a count.

Routes are ``async def handler(agi: AgiSession) -> None`` registered by name; the name is
the path of the AGI URL, any query string becomes ``agi.params``::

    # dialplan: same => n,AGI(agi://127.0.0.1:4573/entry?client=7)
    async def entry(agi: AgiSession) -> None:
        client_id = agi.params.get("client")
        await agi.set_variable("CUBE_OPEN", "1")

    server.add_route("entry", entry)

A route that raises :class:`AgiHangup` (the caller hung up) ends quietly; any other exception
is logged and the connection closed, after which the dialplan continues with the next
priority (``AGISTATUS`` is ``SUCCESS`` unless the channel is gone).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import time
from collections.abc import Callable

from panoramisk import fast_agi

from ..events import AgiSessionEnded, EventHub
from ..limits import RateLimitedLog
from ..logs import get_logger
from .session import (
    COMMAND_TIMEOUT,
    AgiError,
    AgiHangup,
    AgiRoute,
    AgiSession,
    parse_agi_env,
)

log = get_logger(__name__)

ENV_TIMEOUT = 5.0  # seconds a peer gets to send the whole AGI environment
ENV_LIMIT = 64 * 1024  # bytes; Asterisk sends ~1 KB
MAX_SESSIONS = 2048  # open sessions; a call spends milliseconds in the entry route
# At the cap, only a session that has waited this long for its peer is evicted for a new
# one (Asterisk answers in milliseconds); otherwise the new one is refused. Without it a
# peer holding more sessions than the cap makes the server churn through evictions.
EVICT_AFTER = 1.0
BACKLOG = 1024  # listen backlog: a burst of connects is queued, not dropped (1 s SYN retry)


class AgiServer(fast_agi.Application):
    """FastAGI server: panoramisk's route table, our guarded handler. Create inside a loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        hub: EventHub | None = None,
        env_timeout: float = ENV_TIMEOUT,
        env_limit: int = ENV_LIMIT,
        command_timeout: float = COMMAND_TIMEOUT,
        max_sessions: int = MAX_SESSIONS,
        encoding: str = "utf-8",
    ):
        super().__init__(default_encoding=encoding, loop=asyncio.get_running_loop())
        self.host = host
        self.port = port
        self.hub = hub
        self.env_timeout = env_timeout
        self.env_limit = env_limit
        self.command_timeout = command_timeout
        self.max_sessions = max_sessions
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task] = set()
        # Connections still sending their environment, and sessions waiting for a command's
        # reply, with their deadlines (insertion order is deadline order in each), and the
        # ones the watchdog (or the session cap) cut off, with why.
        self._env_deadlines: dict[asyncio.StreamWriter, float] = {}
        self._reply_deadlines: dict[asyncio.StreamWriter, float] = {}
        self._env_expired: set[asyncio.StreamWriter] = set()
        self._cut: dict[asyncio.StreamWriter, str] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self.sessions_total = 0
        self.rejected_total = 0
        self.timeouts_total = 0
        self.evicted_total = 0
        self.refused_total = 0
        # garbage and floods: one line per kind and interval
        self.note = RateLimitedLog(log.warning)
        self.note_error = RateLimitedLog(log.error)
        # /metrics: sessions by (route, outcome); ``on_session(route, outcome, seconds)``
        self.session_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.on_session: Callable[[str, str, float], None] | None = None

    # --- routes ------------------------------------------------------------------------

    def add_route(self, path: str, endpoint: AgiRoute) -> None:
        """Register ``async def endpoint(agi: AgiSession)`` for ``agi://host:port/<path>``."""
        if not inspect.iscoroutinefunction(endpoint) and not inspect.iscoroutinefunction(
            getattr(endpoint, "__call__", None)  # noqa: B004 - async callable objects too
        ):
            raise TypeError(f"AGI route {path!r} must be an async function")
        super().add_route(path.strip("/"), endpoint)

    @property
    def routes(self) -> dict[str, AgiRoute]:
        return dict(self._route)

    def limit_stats(self) -> dict[str, int]:
        """What the bounds did so far (for /health)."""
        return {
            "open": len(self._sessions),
            "max_sessions": self.max_sessions,
            "reply_timeouts": self.timeouts_total,
            "evicted": self.evicted_total,
            "refused": self.refused_total,
            "rejected": self.rejected_total,
        }

    # --- listening ---------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def bound_port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    async def start(self, sock=None) -> None:
        """Listen on ``host:port`` (or on an already bound socket ``sock``)."""
        if sock is not None:
            self._server = await asyncio.start_server(
                self.handler, sock=sock, limit=self.env_limit, backlog=BACKLOG
            )
        else:
            self._server = await asyncio.start_server(
                self.handler,
                self.host,
                self.port,
                limit=self.env_limit,
                reuse_address=True,
                backlog=BACKLOG,
            )
        log.info("agi_listening", host=self.host, port=self.bound_port, routes=sorted(self._route))

    async def close(self, grace: float = 2.0) -> None:
        """Stop listening, give running sessions ``grace`` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sessions:
            _done, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self._server.wait_closed()
        log.info("agi_stopped", sessions=self.sessions_total, rejected=self.rejected_total)

    # --- the guarded connection handler ------------------------------------------------

    async def _expire_env_reads(self) -> None:
        """Cut off peers that have not sent their whole environment within ``env_timeout``,
        and sessions whose command got no reply within ``command_timeout``.

        One timer for all connections rather than ``asyncio.timeout`` around every read
        (~4 us of a ~150 us session); a stalled peer is cut off at most a quarter of the
        timeout (and at most 1 s) late."""
        tick = min(1.0, self.env_timeout / 4, self.command_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for waits in (self._env_deadlines, self._reply_deadlines):
                expired = []
                for writer, deadline in waits.items():
                    if deadline > now:
                        break  # the rest were registered later: later deadlines
                    expired.append(writer)
                for writer in expired:
                    self._cut_off(writer, "timeout")

    def _cut_off(self, writer: asyncio.StreamWriter, why: str) -> None:
        """Close a connection under a pending read (which then sees EOF), noting why."""
        if self._env_deadlines.pop(writer, None) is not None:
            self._env_expired.add(writer)
        else:
            self._reply_deadlines.pop(writer, None)
            self._cut[writer] = why
        writer.transport.abort()

    def _make_room(self) -> bool:
        """At the session cap: evict the session that has waited longest for its peer (a
        reply, else the rest of an environment), if that is at least EVICT_AFTER. False if
        none has."""
        now = time.monotonic()
        for waits, timeout in (
            (self._reply_deadlines, self.command_timeout),
            (self._env_deadlines, self.env_timeout),
        ):
            victim = next(iter(waits), None)
            if victim is not None and waits[victim] - timeout <= now - EVICT_AFTER:
                self.evicted_total += 1
                self.note(
                    "agi_session_evicted",
                    open=len(self._sessions),
                    max_sessions=self.max_sessions,
                    evicted_total=self.evicted_total,
                )
                self._cut_off(victim, "evicted")
                return True
        return False

    async def _read_env(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> dict[str, str] | None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._expire_env_reads())
        self._env_deadlines[writer] = time.monotonic() + self.env_timeout
        try:
            raw = await reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            if writer in self._env_expired:
                self.note("agi_bad_request", peer=peer, reason="environment timeout")
            elif exc.partial:
                self.note("agi_bad_request", peer=peer, reason="closed mid-environment")
            else:
                log.debug("agi_peer_closed", peer=peer)  # connect+close: scan, health check
            return None
        except asyncio.LimitOverrunError:
            self.note("agi_bad_request", peer=peer, reason="environment too large")
            return None
        except ConnectionError as exc:
            log.debug("agi_peer_closed", peer=peer, reason=str(exc))
            return None
        finally:
            self._env_deadlines.pop(writer, None)
            self._env_expired.discard(writer)
        headers = parse_agi_env(raw, self.default_encoding)
        if "agi_network_script" not in headers:
            self.note("agi_bad_request", peer=peer, reason="no agi_network_script")
            return None
        return headers

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        peer = writer.get_extra_info("peername")
        started = time.monotonic()
        session: AgiSession | None = None
        outcome = "error"
        try:
            if len(self._sessions) > self.max_sessions and not self._make_room():
                self.refused_total += 1
                self.note(
                    "agi_session_refused",
                    open=len(self._sessions) - 1,
                    max_sessions=self.max_sessions,
                    refused_total=self.refused_total,
                )
                writer.transport.abort()
                return
            headers = await self._read_env(reader, writer, peer)
            if headers is None:
                self.rejected_total += 1
                return
            self.sessions_total += 1
            session = AgiSession(
                headers,
                reader,
                writer,
                self.default_encoding,
                waits=self._reply_deadlines,
                command_timeout=self.command_timeout,
            )
            route = self._route.get(session.route)
            if route is None:
                outcome = "no_route"
                self.note_error("agi_no_route", route=session.route[:64], channel=session.channel)
                return
            try:
                await route(session)
                outcome = "ok"
            except AgiHangup as exc:
                outcome = self._cut.get(writer, "hangup")
                if outcome == "hangup":
                    log.info(
                        "agi_hangup", route=session.route, channel=session.channel, how=str(exc)
                    )
                else:  # timeout or evicted: a stalled peer, maybe one of many
                    self.timeouts_total += outcome == "timeout"
                    self.note(
                        "agi_reply_" + outcome,
                        route=session.route,
                        channel=session.channel,
                        seconds=self.command_timeout,
                    )
            except AgiError as exc:  # the peer answered garbage
                outcome = "agi_error"
                self.note("agi_bad_reply", route=session.route, channel=session.channel, error=exc)
            except Exception:
                log.exception("agi_route_failed", route=session.route, channel=session.channel)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            self._cut.pop(writer, None)
            if task is not None:
                self._sessions.discard(task)
            if session is not None:
                duration = time.monotonic() - started
                self.session_counts[(session.route, outcome)] += 1
                if self.on_session is not None:
                    self.on_session(session.route, outcome, duration)
                # One line per call at INFO would dominate the log (and cost ~40 µs a
                # session); sessions that went wrong stay at INFO (those a flood can cause,
                # rate-limited above, at DEBUG).
                if outcome in ("no_route", "timeout", "evicted", "agi_error"):
                    pass
                elif outcome != "ok" or log.isEnabledFor(logging.DEBUG):
                    (log.debug if outcome == "ok" else log.info)(
                        "agi_session",
                        route=session.route,
                        channel=session.channel,
                        outcome=outcome,
                        ms=round(duration * 1000, 1),
                    )
                if self.hub is not None:
                    self.hub.publish(
                        AgiSessionEnded(
                            route=session.route,
                            channel=session.channel,
                            unique_id=session.unique_id,
                            outcome=outcome,
                            duration=duration,
                        )
                    )
