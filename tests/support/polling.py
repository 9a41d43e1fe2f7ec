"""Waiting for a condition instead of sleeping a fixed time: the one polling helper."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    what: str = "condition",
    every: float = 0.05,
) -> Any:
    """Poll ``predicate`` (sync, or async: awaited) until it returns something truthy and
    return that; AssertionError naming ``what`` once ``timeout`` seconds of the loop's
    clock passed (the loop's: under looptime that is the fake time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    every: float = 0.05,
) -> Any:
    """:func:`until` for code outside an event loop (a thread, another process's output)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


async def settle(rounds: int = 10) -> None:
    """Let the tasks already scheduled run: yield to the loop ``rounds`` times."""
    for _ in range(rounds):
        await asyncio.sleep(0)
