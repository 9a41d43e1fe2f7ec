"""The event-loop watchdog (asterisk_cube/loopwatch.py): a loop blocked on purpose is
reported once, with the blocking function in the loop thread's stack and how long it
lasted; a stall inside the garbage collector says so; serve runs it from the settings."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
from support.polling import until

from asterisk_cube.config import ConfigError, load_settings
from asterisk_cube.loopwatch import LoopWatch

BLOCK = 1.0
THRESHOLD = 0.2


def block_the_loop_on_purpose(seconds: float) -> None:
    time.sleep(seconds)  # what a synchronous query or subprocess does to the loop


def busy_on_the_loop(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:  # CPU work on the loop (parsing, ORM loading...)
        pass


async def _watching(threshold: float = THRESHOLD):
    watch = LoopWatch(threshold)
    task = asyncio.create_task(watch.run())
    await until(lambda: watch._loop_thread is not None, what="watch started")
    return watch, task


async def _stop(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_blocked_loop_is_reported_once_with_its_stack(caplog):
    caplog.set_level(logging.WARNING, logger="asterisk_cube.loopwatch")
    watch, task = await _watching()
    block_the_loop_on_purpose(BLOCK)
    ours = await until(
        lambda: [s for s in watch.stalls if "block_the_loop_on_purpose" in s.stack],
        what="the stall reported",
    )
    await until(lambda: ours[0].lasted is not None, what="the stall's end reported")
    await _stop(task)
    assert len(ours) == 1  # once per stall, however long it lasts
    (stall,) = ours
    assert "time.sleep(seconds)" in stall.stack
    assert "test_a_blocked_loop_is_reported_once_with_its_stack" in stall.stack
    assert THRESHOLD < stall.blocked <= stall.lasted
    assert BLOCK - THRESHOLD < stall.lasted < BLOCK + 1.0
    assert stall.cpu_seconds is not None and stall.cpu_seconds < BLOCK / 2  # asleep: no CPU
    events = [getattr(r, "cube_fields", {}) for r in caplog.records]
    reports = [f for f in events if "block_the_loop_on_purpose" in str(f.get("stack"))]
    assert len(reports) == 1 and reports[0]["threshold_ms"] == 200
    assert any("stalled_ms" in f for f in events)
    assert "block_the_loop_on_purpose" in watch.summary()


async def test_a_stall_doing_cpu_work_on_the_loop_shows_the_cpu_it_used():
    watch, task = await _watching()
    busy_on_the_loop(0.6)
    stall = await until(
        lambda: next((s for s in watch.stalls if "busy_on_the_loop" in s.stack and s.lasted), None),
        timeout=30,
        what="the stall's end reported",
    )
    await _stop(task)
    assert stall.cpu_seconds >= 0.6  # running, not starved: the stack is the cause
    assert stall.process_cpu_seconds >= stall.cpu_seconds


async def test_a_stall_in_the_garbage_collector_is_named():
    watch, task = await _watching()

    def slow_collection(phase, info):
        if phase == "start":  # runs after the watch's own callback: inside the collection
            time.sleep(BLOCK)

    gc.callbacks.append(slow_collection)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(slow_collection)
    stall = await until(
        lambda: next(
            (s for s in watch.stalls if "slow_collection" in s.stack and s.lasted is not None),
            None,
        ),
        what="the stall's end reported",
    )
    await _stop(task)
    assert stall.gc_seconds >= BLOCK - 0.05
    assert watch.gc_count >= 1 and watch.gc_longest[0] >= BLOCK - 0.05
    assert watch.gc_longest[1] == 2  # gc.collect(): a full collection
    assert "gc.collect()" in stall.stack
    assert gc.callbacks.count(watch._on_gc) == 0  # stopping the watch unhooks it


def test_serve_runs_it_from_the_settings():
    assert load_settings(env={}).metrics.loop_stall_ms == 500
    env = {"ASTERISK_CUBE_METRICS_LOOP_STALL_MS": "0"}
    assert load_settings(env=env).metrics.loop_stall_ms == 0  # off
    with pytest.raises(ConfigError, match=r"metrics.loop_stall_ms must be 0 \(off\) or 20-60000"):
        load_settings(env={"ASTERISK_CUBE_METRICS_LOOP_STALL_MS": "5"})
