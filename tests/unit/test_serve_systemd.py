"""``serve`` as a real process under a stand-in for systemd (issue #15): READY=1 once it
listens, watchdog pings from its loop, STOPPING=1 on SIGTERM; /ready says 503 (no
Asterisk) with fixed problem keys while /health stays 200. Helpers from test_serve_process
and test_systemd."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

from test_serve_process import health, serve_env, start, stop
from test_systemd import notify_socket

__all__ = ["notify_socket", "serve_env"]  # the fixtures, reused


def test_serve_notifies_systemd_and_pings_the_watchdog(serve_env, notify_socket, tmp_path):
    env, received, wait_for = notify_socket
    serve_env.update(env, WATCHDOG_USEC="200000")  # WatchdogSec=0.2: a ping every 0.1 s
    proc = start(serve_env, tmp_path)
    try:
        wait_for(1)
        assert received[0][1] == "READY=1"
        wait_for(4)  # pings keep coming
        assert {m for _, m in received[1:]} == {"WATCHDOG=1"}
        status, body = health(serve_env)
        assert status == 200 and body["status"] == "degraded"
        url = f"http://127.0.0.1:{serve_env['ASTERISK_CUBE_WEB_PORT']}/ready"
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("ready without Asterisk")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            ready = json.load(exc)
        assert ready["ready"] is False
        assert ready["checks"]["ari"] == "disconnected"
        assert ready["checks"]["agi"] == "ok" and ready["checks"]["database"] == "ok"
        code, _ = stop(proc, signal.SIGTERM)
        assert code == 0
        wait_for(lambda: any(m == "STOPPING=1" for _, m in received))
        assert received[-1][1] == "STOPPING=1"  # the last word
    finally:
        if proc.poll() is None:
            proc.kill()
