"""systemd integration for ``serve`` (issue #15): ``Type=notify`` readiness and the
watchdog, over the datagram socket in ``$NOTIFY_SOCKET`` (the sd_notify protocol: a few
lines of socket code, no library needed). Outside systemd every call is a no-op.

The watchdog ping is a coroutine on serve's event loop, so a loop that is blocked (a
runaway handler, a deadlock on the GIL) stops pinging and systemd restarts the service
after ``WatchdogSec``; a thread could keep pinging while calls are stuck."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from .logs import get_logger

log = get_logger(__name__)


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=...``) to
    systemd; False when not run by systemd or the socket is gone."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), target)
    except OSError as exc:
        log.warning("sd_notify_failed", error=repr(exc))
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``WatchdogSec``), or None without a watchdog."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000 / 2


async def watchdog(interval: float, send: Callable[[str], object] = notify) -> None:
    """A serve component: ``WATCHDOG=1`` every ``interval`` seconds from the event loop."""
    while True:
        send("WATCHDOG=1")
        await asyncio.sleep(interval)


def default_executable() -> str:
    """The ``asterisk-cube`` script of this installation (its virtualenv's bin/)."""
    script = Path(sys.executable).parent / "asterisk-cube"
    return str(script if script.exists() else Path(sys.argv[0]).resolve())


def unit_file(executable: str | None = None) -> str:
    """The systemd unit shipped with the package (``asterisk-cube config systemd``), its
    ExecStart pointing at ``executable`` (default: this installation's script)."""
    text = resources.files("asterisk_cube").joinpath("ops/asterisk-cube.service").read_text()
    return text.replace("@EXECUTABLE@", executable or default_executable())


def environment_file() -> str:
    return resources.files("asterisk_cube").joinpath("ops/asterisk-cube.env").read_text()
