"""The shared bounds of issue #12: rate-limited logs, caps that fit the open-file limit,
the login throttle's take-back and the password-check gate."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asterisk_cube.limits import FD_RESERVE, RateLimitedLog, fit_connection_caps
from asterisk_cube.web.auth import LoginBusy, LoginThrottle, PasswordGate


def test_a_repeated_event_is_logged_once_per_interval_with_the_count_left_out():
    lines = []
    now = [0.0]
    note = RateLimitedLog(lambda event, **f: lines.append((event, f)), 10, clock=lambda: now[0])
    for _ in range(1000):
        note("agi_no_route", route="x")
    note("other")
    now[0] = 10.5
    note("agi_no_route", route="y")
    assert lines == [
        ("agi_no_route", {"route": "x"}),
        ("other", {}),
        ("agi_no_route", {"route": "y", "suppressed": 999}),
    ]


def test_connection_caps_fit_under_the_open_file_limit():
    assert fit_connection_caps(4096, 512, 65536) == (4096, 512)
    web, agi = fit_connection_caps(4096, 512, 1024)
    assert web + agi <= 1024 - FD_RESERVE and web > agi >= 16


def test_the_throttle_takes_back_an_attempt_that_was_not_a_failure():
    throttle = LoginThrottle(limit=2, window=60)
    throttle.failed("a:1")
    throttle.failed("a:1")
    assert throttle.blocked("a:1")
    throttle.forgive("a:1")
    assert not throttle.blocked("a:1")


async def test_the_password_gate_runs_one_check_at_a_time_and_refuses_beyond_its_queue():
    gate = PasswordGate(workers=1, queue=2)
    release = threading.Event()
    running = []

    def check(n: int) -> int:
        running.append(n)
        release.wait(5)
        return n

    tasks = [asyncio.create_task(gate.run(check, n)) for n in range(3)]
    await asyncio.sleep(0.05)
    with pytest.raises(LoginBusy):
        await gate.run(check, 99)  # 1 running + 2 waiting: full
    assert running == [0] and gate.refused == 1
    release.set()
    assert await asyncio.gather(*tasks) == [0, 1, 2]
    assert await gate.run(check, 4) == 4  # room again


async def test_accept_errors_out_of_descriptors_are_logged_once_per_interval(caplog):
    from asterisk_cube.limits import quiet_accept_errors

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    quiet_accept_errors(loop)
    try:
        for _ in range(500):  # what asyncio reports for every refused accept at EMFILE
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                }
            )
    finally:
        loop.set_exception_handler(previous)
    lines = [r for r in caplog.records if r.getMessage() == "accept_out_of_resources"]
    assert len(lines) == 1
