"""Every process a test run starts (SIPp phones, ``serve``) is stopped when the run stops,
also when it is stopped with Ctrl-C or SIGTERM.

``tests/conftest.py`` turns SIGTERM into KeyboardInterrupt, so pytest ends the run the way it
ends one on Ctrl-C: fixtures' finalizers and ``with`` blocks run (SIPp phones stop softly, the
sandbox fixture stops its Asterisk). As a backstop every child is :func:`track`-ed, started
in its own process group (a terminal's Ctrl-C reaches pytest, not the children directly;
the whole group goes at once), and :func:`stop_all` (registered with ``atexit``) ends the
ones still alive: SIGTERM to the group, then SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

_live: dict[int, subprocess.Popen] = {}


def track(proc: subprocess.Popen) -> subprocess.Popen:
    """Remember ``proc`` (started with ``start_new_session=True``) until it has exited."""
    for pid in [p for p, pr in _live.items() if pr.poll() is not None]:
        del _live[pid]
    _live[proc.pid] = proc
    return proc


def stop_all(grace: float = 3.0) -> list[int]:
    """Stop every tracked process still running; returns their pids."""
    left = [pr for pr in _live.values() if pr.poll() is None]
    for pr in left:
        _signal_group(pr, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pr in left:
        with contextlib.suppress(subprocess.TimeoutExpired):
            pr.wait(max(0.0, deadline - time.monotonic()))
        if pr.poll() is None:
            _signal_group(pr, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                pr.wait(5)
    _live.clear()
    return [pr.pid for pr in left]


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:  # its own group (start_new_session)
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def sigterm_to_keyboard_interrupt(signum: int, _frame: object) -> None:
    """SIGTERM ends a test run like Ctrl-C: finalizers run (pytest's default is to die
    at once and leave every child running)."""
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def direct_children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def sigterm_to_workers_too(signum: int, frame: object) -> None:
    """The pytest-xdist controller: its workers (its only direct children) get the
    SIGTERM too, so each ends like Ctrl-C, its finalizers stopping what it started
    (xdist would otherwise kill them without)."""
    for pid in direct_children(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    sigterm_to_keyboard_interrupt(signum, frame)


atexit.register(stop_all)
