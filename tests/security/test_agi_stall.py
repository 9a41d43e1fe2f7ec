"""Issue #12 item 3: FastAGI peers that go silent, or talk garbage, cannot hold serve.

Before the fix a peer that sent its AGI environment and then never answered a command held
its session for ever (100 such sessions were all still open after 60 s; ~1100 made serve
unresponsive), and every connection naming an unknown route logged an error line. Now a
reply is awaited ``[agi] command_timeout`` (10 s) seconds, at most ``max_sessions`` (2048)
sessions are open (a new one evicts the one waiting longest if that has waited at least
1 s, else it is refused), and garbage is logged once per interval with a count.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from isolation_kit import Target, agi_env, agi_ping

STALLED = 600


def stalled_session(port: int) -> socket.socket:
    """Send the environment, take the first command, never answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(agi_env("ping"))
    assert sock.recv(64).startswith(b"SET VARIABLE")
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        return sock.recv(64) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def garbage(port: int, script: str, reply: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(agi_env(script))
        sock.settimeout(5)
        while sock.recv(256):
            sock.sendall(reply)


def agi_stats(target: Target) -> dict:
    with urllib.request.urlopen(target.url + "/health", timeout=5) as resp:
        return json.load(resp)["agi"]


def test_silent_and_garbage_agi_peers_are_cut_off_and_logged_once(tmp_path):
    target = Target(tmp_path).start()
    socks: list[socket.socket] = []
    try:
        socks = [stalled_session(target.agi_port) for _ in range(STALLED)]
        # the call path still gets in, at once
        assert agi_ping(target.agi_port, timeout=5) < 1.0

        # garbage: unknown routes, and a peer answering nonsense to a known one
        for _ in range(100):
            garbage(target.agi_port, "no-such-route", b"")
            garbage(target.agi_port, "ping", b"hello\n")
        assert agi_ping(target.agi_port, timeout=5) < 1.0

        # every silent session is closed after the reply timeout (10 s + the watchdog tick)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in socks):
            time.sleep(0.2)
        assert all(closed_by_server(s) for s in socks)
        stats = agi_stats(target)
        assert stats["reply_timeouts"] >= 1 and stats["open"] == 0, stats
        log = target.log()
        for event in ("agi_no_route", "agi_bad_reply", "agi_reply_timeout"):
            assert log.count(f"event={event}") <= 2, event
    finally:
        for sock in socks:
            sock.close()
        target.stop()


def test_at_the_session_cap_the_longest_waiting_session_makes_room(tmp_path):
    target = Target(tmp_path, ASTERISK_CUBE_AGI_MAX_SESSIONS="50").start()
    socks: list[socket.socket] = []
    try:
        socks = [stalled_session(target.agi_port) for _ in range(50)]
        # a newcomer is refused until the oldest has waited 1 s, then it takes its place
        deadline = time.monotonic() + 10
        while True:
            try:
                assert agi_ping(target.agi_port, timeout=5) < 1.0
                break
            except (AssertionError, OSError):
                assert time.monotonic() < deadline, "no session made room"
                time.sleep(0.05)
        assert closed_by_server(socks[0]) and not closed_by_server(socks[-1])
        stats = agi_stats(target)
        assert stats["evicted"] >= 1 and stats["open"] <= 50, stats
        log = target.log()
        assert log.count("event=agi_session_evicted") <= 2
        assert log.count("event=agi_session_refused") <= 2
    finally:
        for sock in socks:
            sock.close()
        target.stop()
