"""Issue #12: a request whose body trickles in cannot hold a connection for ever.

The header deadline (test_slowloris.py) ends once the header is complete; a peer that then
announces a body and sends it a byte at a time (or never) kept its connection, a request
task and a file descriptor with no deadline, and such connections count as busy, so at the
connection cap they are never evicted and a browser is refused. Now the body gets
``[web] body_timeout`` seconds from the end of the header; then the peer gets 408 and the
connection is closed, logged once per interval, without a traceback.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from isolation_kit import Target

SLOW = 40


def slow_body(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        b'{"username": '
    )
    return sock


def answer(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing; None while the connection is still open."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


def test_a_body_that_trickles_in_is_cut_at_the_body_deadline(tmp_path):
    target = Target(tmp_path, ASTERISK_CUBE_WEB_BODY_TIMEOUT="2").start()
    socks: list[socket.socket] = []
    try:
        socks = [slow_body(target.web_port) for _ in range(SLOW)]
        opened = time.monotonic()
        for sock in socks[: SLOW // 2]:
            sock.sendall(b" ")  # a byte now and then does not extend the deadline
        # the web still answers while they wait, and all of them are cut after ~2 s
        assert target.health(timeout=5) < 1.0
        answers = [answer(sock, timeout=max(0.1, opened + 15 - time.monotonic())) for sock in socks]
        assert all(a is not None for a in answers), "a slow body kept its connection"
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]
        with urllib.request.urlopen(target.url + "/health", timeout=5) as resp:
            stats = json.load(resp)["web"]["connections"]
        assert stats["body_timeouts"] >= SLOW and stats["open"] <= 2, stats
        log = target.log()
        assert log.count("event=web_body_timeout") <= 2
        assert "Traceback" not in log and "Exception in ASGI" not in log
    finally:
        for sock in socks:
            sock.close()
        target.stop()


def test_a_whole_body_sent_in_pieces_within_the_deadline_is_served(tmp_path):
    target = Target(tmp_path, ASTERISK_CUBE_WEB_BODY_TIMEOUT="5").start()
    try:
        body = json.dumps({"username": "nobody", "password": "wrong-password"}).encode()
        sock = socket.create_connection(("127.0.0.1", target.web_port), timeout=10)
        sock.sendall(
            b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        for i in range(0, len(body), 8):
            sock.sendall(body[i : i + 8])
            time.sleep(0.05)
        reply = answer(sock, timeout=10)
        assert reply is not None and reply.startswith(b"HTTP/1.1 401"), reply
        sock.close()
    finally:
        target.stop()
