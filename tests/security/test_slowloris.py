"""Issue #12 item 2: connections that send half a request header cannot starve serve.

Before the fix uvicorn held such a connection for ever: at the common 1024 open-file
limit 1100 of them stopped serve from accepting anything (the web, and FastAGI on the same
loop), and every refused accept logged an error with a traceback. Now serve raises its
open-file limit at start, gives a header ``header_timeout`` seconds, caps the connections
(evicting the oldest one without a request) and logs such events once per interval.
"""

from __future__ import annotations

import json
import resource
import socket
import time
import urllib.request

import pytest
from isolation_kit import Target, agi_ping

HALF_HEADER = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(autouse=True)
def enough_fds_here():
    """This test process holds the attack's sockets: lift its own soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def common_limit() -> None:  # runs in serve's child process before exec
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def half_open(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.sendall(HALF_HEADER)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def health_json(target: Target) -> dict:
    with urllib.request.urlopen(target.url + "/health", timeout=5) as resp:
        return json.load(resp)


def test_half_headers_beyond_the_open_file_limit_are_timed_out(tmp_path):
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048:
        pytest.skip("the hard open-file limit is below what the attack needs")
    target = Target(tmp_path).start(preexec_fn=common_limit)
    socks: list[socket.socket] = []
    try:
        socks = half_open(target.web_port, 1100)
        # while they are all open the process still answers: web and the call path
        assert target.health(timeout=5) < 1.0
        assert agi_ping(target.agi_port, timeout=5) < 1.0
        # and the server cuts them off after the header timeout (10 s by default)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in socks):
            time.sleep(0.2)
        assert all(closed_by_server(s) for s in socks)
        stats = health_json(target)["web"]["connections"]
        assert stats["header_timeouts"] >= 1100 and stats["open"] <= 2, stats
        assert target.log().count("event=web_header_timeout") <= 2
        assert "event=accept_out_of_resources" not in target.log()
    finally:
        for sock in socks:
            sock.close()
        target.stop()


def test_at_the_connection_cap_the_oldest_half_header_makes_room(tmp_path):
    target = Target(
        tmp_path, ASTERISK_CUBE_WEB_MAX_CONNECTIONS="50", ASTERISK_CUBE_WEB_HEADER_TIMEOUT="60"
    ).start()
    socks: list[socket.socket] = []
    try:
        socks = half_open(target.web_port, 200)
        assert target.health(timeout=5) < 1.0  # evicts one more
        stats = health_json(target)["web"]["connections"]
        assert stats["evicted"] >= 150 and stats["open"] <= 50, stats
        assert closed_by_server(socks[0]) and not closed_by_server(socks[-1])
        assert target.log().count("event=web_connection_evicted") <= 2
    finally:
        for sock in socks:
            sock.close()
        target.stop()
