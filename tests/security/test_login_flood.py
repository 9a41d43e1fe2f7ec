"""Issue #12 item 1: a flood of bad logins cannot buy CPU or memory on the call path.

Each argon2 check costs 64 MiB and ~0.1 s of CPU. Before the fix every parallel request
passed the throttle (a failure was counted only after its check) and ran in Starlette's
40-thread pool: 60 parallel bad logins took serve from ~90 MiB to ~1 GiB and a FastAGI
session (the call path's loop) waited tens of seconds. Now the attempt counts before the
check, checks run in a pool of one, at most a few wait, and the rest are refused at once.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading

from isolation_kit import Target, agi_ping

PARALLEL = 60


def login(port: int, username: str, password: str = "wrong-password") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = json.dumps({"username": username, "password": password})
        conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def flood(target: Target, usernames: list[str]) -> tuple[list[int], list[float]]:
    """All logins at once; meanwhile FastAGI ping round trips. (statuses, ping seconds)"""
    pings: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            pings.append(agi_ping(target.agi_port))

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(usernames)) as pool:
            statuses = list(pool.map(lambda u: login(target.web_port, u), usernames))
    finally:
        done.set()
        prober.join(60)
    return statuses, pings


def test_parallel_bad_logins_are_bounded_and_do_not_stall_the_call_path(tmp_path):
    target = Target(tmp_path).start()
    try:
        assert login(target.web_port, "warm-up") == 401  # argon2 loaded, dummy hash made
        before = target.status()

        # One username, many at once: the attempts count before the check, so at most
        # the per-user limit (5) is checked, the rest are throttled.
        statuses, _ = flood(target, ["kari"] * 20)
        assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
        assert target.log().count("event=web_login_failed username=kari") <= 5

        # Many usernames at once: one check runs, a few wait, the rest are refused now.
        statuses, pings = flood(target, [f"nobody{i}" for i in range(PARALLEL)])
        after = target.status()
        assert set(statuses) <= {401, 429, 503}, statuses
        assert statuses.count(401) <= 10, statuses  # at most 1 running + 8 waiting + 1
        assert pings and max(pings) < 1.0, pings
        assert target.health(timeout=5) < 1.0
        grown_mib = (after["VmHWM"] - before["VmHWM"]) / 1024
        assert grown_mib < 100, f"peak RSS grew {grown_mib:.0f} MiB"
        # refusals are logged once per interval, not per request
        assert target.log().count("event=web_login_busy") <= 2
    finally:
        target.stop()
