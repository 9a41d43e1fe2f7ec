"""systemd integration (issue #15): sd_notify over $NOTIFY_SOCKET, the watchdog pinged
from the event loop (it stops while the loop is blocked), the shipped unit verifies."""

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from asterisk_cube import systemd
from asterisk_cube.cli import cli


@pytest.fixture
def notify_socket(tmp_path):
    """A datagram socket standing in for systemd; ``received`` collects (time, message)."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    received: list[tuple[float, str]] = []
    arrived = threading.Condition()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            with arrived:
                received.append((time.monotonic(), data.decode()))
                arrived.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(what, timeout=10):
        """``what``: a message count, or a predicate over the messages received."""
        done = what if callable(what) else (lambda: len(received) >= what)
        with arrived:
            assert arrived.wait_for(done, timeout), received

    yield {"NOTIFY_SOCKET": path}, received, wait_for
    stop.set()
    reader.join()
    sock.close()


def test_notify_sends_to_the_socket_and_is_a_no_op_outside_systemd(notify_socket):
    env, received, wait_for = notify_socket
    assert systemd.notify("READY=1", env=env)
    wait_for(1)
    assert received[0][1] == "READY=1"
    assert systemd.notify("READY=1", env={}) is False


def test_watchdog_interval_is_half_of_watchdog_sec():
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert systemd.watchdog_interval(env) == 15.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval({}) is None


async def test_watchdog_pings_stop_while_the_loop_is_blocked(notify_socket):
    env, received, _ = notify_socket
    interval = 0.05
    pinger = asyncio.create_task(
        systemd.watchdog(interval, send=lambda m: systemd.notify(m, env=env))
    )
    while len(received) < 3:  # pinging (the reader thread collects)
        await asyncio.sleep(interval)
    before = len(received)
    blocked_from = time.monotonic()
    time.sleep(0.6)  # the fault: a handler blocks the event loop
    blocked_until = time.monotonic()
    assert len(received) <= before + 1  # at most one ping was already in flight
    while len(received) < before + 2:  # the loop runs again: pings resume
        await asyncio.sleep(interval)
    pinger.cancel()
    inside = [t for t, _ in received if blocked_from + 0.01 < t < blocked_until]
    assert not inside, "the watchdog pinged while the loop was blocked"
    assert all(m == "WATCHDOG=1" for _, m in received)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_the_shipped_unit_verifies(tmp_path):
    result = CliRunner().invoke(cli, ["config", "systemd"])
    assert result.exit_code == 0, result.output
    unit = result.output
    for line in ("Type=notify", "WatchdogSec=", "LimitNOFILE=65536", "User=asterisk-cube"):
        assert line in unit
    assert "ExecStart=" + systemd.default_executable() + " serve" in unit
    path = tmp_path / "asterisk-cube.service"
    path.write_text(unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stderr
    assert "asterisk-cube" not in verify.stderr, verify.stderr  # no warning about our unit
    env = CliRunner().invoke(cli, ["config", "systemd", "--env"]).output
    assert "ASTERISK_CUBE_" in env
