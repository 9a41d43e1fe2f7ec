"""Bounds that keep outside traffic from stalling the call path (issue #12 items 1-3).

``serve`` runs the Stasis app, FastAGI and the web app on one event loop, so anything an
unauthenticated peer can make the process hold (file descriptors, memory, CPU, log lines)
is taken from the calls. This module has the pieces the adapters share:

* :func:`raise_open_file_limit`: the soft ``RLIMIT_NOFILE`` up to the hard limit at start;
* :func:`fit_connection_caps`: the web connection cap and the FastAGI session cap, lowered
  to fit the open-file limit (with room for ARI, AMI, the database and logs);
* :class:`RateLimitedLog`: one line per interval for a repeated event, with the count of
  the ones left out, so a flood cannot grow the log per connection;
* :func:`quiet_accept_errors`: the loop's exception handler logging "out of system
  resource" accept errors (EMFILE) through a :class:`RateLimitedLog`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .logs import get_logger

log = get_logger(__name__)

#: Descriptors kept free for everything but web connections and AGI sessions (ARI, AMI,
#: database, log files, the journal's thread, ...).
FD_RESERVE = 128
#: The soft open-file limit is raised at most this far (the hard limit can be "unlimited").
FD_TARGET = 65536
#: Seconds between two lines of the same rate-limited event.
LOG_INTERVAL = 10.0


def raise_open_file_limit(target: int = FD_TARGET) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``min(hard, target)``; return the soft limit
    in force afterwards (unchanged where the platform or the hard limit does not allow)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return target
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            log.info("open_file_limit_raised", old=soft, new=want, hard=hard)
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("open_file_limit_not_raised", soft=soft, hard=hard, error=str(exc))
    return target if soft == resource.RLIM_INFINITY else int(soft)


def fit_connection_caps(web: int, agi: int, fd_limit: int) -> tuple[int, int]:
    """``(web, agi)`` caps that fit ``fd_limit`` with :data:`FD_RESERVE` to spare: both
    lowered in proportion when they do not (each at least 16)."""
    room = max(32, fd_limit - FD_RESERVE)
    if web + agi <= room:
        return web, agi
    scale = room / (web + agi)
    fitted = max(16, int(web * scale)), max(16, int(agi * scale))
    log.warning(
        "connection_caps_lowered",
        fd_limit=fd_limit,
        web_max_connections=fitted[0],
        agi_max_sessions=fitted[1],
    )
    return fitted


class RateLimitedLog:
    """Log an event at most once per ``interval`` seconds, with ``suppressed=<n>`` for the
    occurrences left out since the last line."""

    def __init__(
        self,
        emit: Callable[..., Any],
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.emit = emit
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, event: str, **fields: Any) -> bool:
        """Log now (True) or count it for the next line (False)."""
        now = self.clock()
        last = self._last.get(event)
        if last is not None and now - last < self.interval:
            self._suppressed[event] = self._suppressed.get(event, 0) + 1
            return False
        self._last[event] = now
        suppressed = self._suppressed.pop(event, 0)
        if suppressed:
            fields["suppressed"] = suppressed
        self.emit(event, **fields)
        return True


_ACCEPT_MESSAGES = ("socket.accept() out of system resource",)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, interval: float = LOG_INTERVAL) -> None:
    """Install a loop exception handler that writes the accept loop's resource errors (one
    per refused connection, with a traceback) at most once per ``interval``; everything
    else goes to the default handler."""
    limited = RateLimitedLog(log.error, interval)
    previous = loop.get_exception_handler()

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith(_ACCEPT_MESSAGES):
            exc = context.get("exception")
            limited("accept_out_of_resources", error=repr(exc) if exc else message)
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)
