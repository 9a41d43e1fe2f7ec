"""Issue #12 (benchmark finding): one login cannot hold hundreds of event streams.

Each ``GET /api/events`` stream costs a hub subscription (every event of the process is
queued to it) and a rendered view per change; 500 streams of one agent delayed calls
several-fold in bench/isolation_bench.py. At most 4 streams per agent are open; a fifth is
refused (429) until one ends. The same holds for a supervisor's panel streams (each a feed
subscription and a state push per change).
"""

from __future__ import annotations

import http.client
import json
import socket
import time

from isolation_kit import Target

STREAMS = 10
KEPT = 4


def login_cookie(port: int, username: str = "watcher") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": username, "password": f"{username}-password"})
    conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    cookie = resp.getheader("set-cookie").split(";", 1)[0]
    conn.close()
    return cookie


def open_stream(
    port: int, cookie: str, path: str = "/api/events", first: bytes = b"event: view"
) -> tuple[int, socket.socket]:
    """(HTTP status, socket); for 200 once the ``first`` message has arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head or (head.startswith(b"HTTP/1.1 200") and first not in head):
        chunk = sock.recv(65536)
        assert chunk, head
        head += chunk
    return int(head.split(b" ", 2)[1]), sock


def ended(sock: socket.socket) -> bool:
    """The server finished the chunked stream (or closed the connection)."""
    sock.settimeout(0)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except BlockingIOError:
        return b"0\r\n\r\n" in data
    except ConnectionResetError:
        return True
    return True


def test_an_agent_keeps_at_most_four_event_streams(tmp_path):
    target = Target(tmp_path)
    target.cli(
        "agent",
        "add",
        "watcher",
        "--endpoint",
        "PJSIP/watcher",
        "--password-stdin",
        stdin="watcher-password\n",
    )
    target.start()
    socks: list[socket.socket] = []
    try:
        cookie = login_cookie(target.web_port)
        opened = [open_stream(target.web_port, cookie) for _ in range(STREAMS)]
        socks = [sock for _, sock in opened]
        assert [status for status, _ in opened] == [200] * KEPT + [429] * (STREAMS - KEPT)
        assert not any(ended(sock) for sock in socks[:KEPT])
        socks[0].close()  # a tab is closed: its place is free again
        deadline = time.monotonic() + 10
        while (status := open_stream(target.web_port, cookie))[0] != 200:
            status[1].close()
            assert time.monotonic() < deadline, "the closed stream's place stayed taken"
            time.sleep(0.1)
        socks.append(status[1])
        assert target.log().count("event=desk_streams_refused") <= 2
    finally:
        for sock in socks:
            sock.close()
        target.stop()


def test_a_supervisor_keeps_at_most_four_panel_streams(tmp_path):
    target = Target(tmp_path)
    target.cli(
        "agent", "add", "boss", "--role", "supervisor", "--password-stdin",
        stdin="boss-password\n",
    )  # fmt: skip
    target.start()
    socks: list[socket.socket] = []
    try:
        cookie = login_cookie(target.web_port, "boss")
        opened = [
            open_stream(target.web_port, cookie, "/panel/events", b"event: snapshot")
            for _ in range(STREAMS)
        ]
        socks = [sock for _, sock in opened]
        assert [status for status, _ in opened] == [200] * KEPT + [429] * (STREAMS - KEPT)
        assert not any(ended(sock) for sock in socks[:KEPT])
        socks[0].close()
        deadline = time.monotonic() + 10
        while (status := open_stream(target.web_port, cookie, "/panel/events", b"snapshot"))[
            0
        ] != 200:
            status[1].close()
            assert time.monotonic() < deadline, "the closed stream's place stayed taken"
            time.sleep(0.1)
        socks.append(status[1])
        assert target.log().count("event=panel_streams_refused") <= 2
    finally:
        for sock in socks:
            sock.close()
        target.stop()
