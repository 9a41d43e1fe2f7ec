"""The event-loop watchdog: a stall names its cause.

Everything ``serve`` does for calls runs on one asyncio loop; a synchronous call that takes
a second (a query, a file, a subprocess, a long garbage collection) holds every call's
events that second. The ``loop-lag`` histogram (metrics.py) says *that* the loop was late;
this says *why*:

* on the loop, a heartbeat task notes every ``threshold / 4`` when it is next due;
* a daemon thread looks at it as often; when the heartbeat is more than ``threshold`` late
  it logs the loop thread's Python stack (``sys._current_frames()``) once for that stall
  (``loop_stall``, WARNING), and when the loop runs again how long the stall lasted
  (``loop_stall_over``), with the CPU time the loop thread used meanwhile (far less than
  the stall: it was not running, e.g. the machine's CPUs were busy elsewhere) and the
  time the garbage collector ran on the loop thread (``gc.callbacks``: a collection holds
  the GIL, so the stack taken after it shows where it was triggered, not the collector).

``[metrics] loop_stall_ms`` (env ``ASTERISK_CUBE_METRICS_LOOP_STALL_MS``; default 500, 0 is
off) sets the threshold; docs/operations.md, "Event-loop stalls".
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asterisk_cube.logs import get_logger

log = get_logger(__name__)

#: frames of the loop thread's stack that a stall report keeps (innermost last)
STACK_FRAMES = 25


@dataclass
class Stall:
    """One stall, as the watchdog saw it."""

    blocked: float  # seconds late when the stack was taken
    stack: str
    lasted: float | None = None  # seconds, once the loop ran again
    gc_seconds: float = 0.0  # garbage collection on the loop thread during the stall
    #: CPU the loop thread used during the stall: far below ``lasted`` when it was not
    #: running at all (the machine's CPUs busy elsewhere, or another thread held the GIL)
    cpu_seconds: float | None = None
    #: CPU the whole process (every thread) used meanwhile: near ``cpu_seconds`` too when
    #: the process was not scheduled; far above it when another thread ran (held the GIL)
    process_cpu_seconds: float | None = None


class LoopWatch:
    """Run :meth:`run` as a task on the loop to watch (``serve`` does: component
    ``loop-watch``); cancelling it stops the thread."""

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 20,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = threshold
        self.every = threshold / 4
        self.clock = clock
        self.keep = keep
        #: the last ``keep`` stalls, oldest first
        self.stalls: list[Stall] = []
        self.count = 0
        self._due = clock() + self.every
        self._gc_total = 0.0  # seconds of collection on the loop thread, ever
        self._gc_at_beat = 0.0
        self._gc_before = 0.0  # _gc_at_beat when the current stall began
        self._cpu_at_beat = 0.0  # the loop thread's CPU time (time.thread_time) at a beat
        self._cpu_before = 0.0
        self._proc_at_beat = 0.0  # time.process_time at a beat
        self._proc_before = 0.0
        self._gc_started: float | None = None
        #: collections on the loop thread: how many, and the longest (seconds, generation)
        self.gc_count = 0
        self.gc_longest: tuple[float, int] = (0.0, 0)
        self._loop_thread: int | None = None
        self._stop = threading.Event()

    async def run(self) -> None:
        self._loop_thread = threading.get_ident()
        self._due = self.clock() + self.every
        self._stop.clear()
        gc.callbacks.append(self._on_gc)
        thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        thread.start()
        try:
            while True:
                self._gc_at_beat = self._gc_total
                self._cpu_at_beat = time.thread_time()
                self._proc_at_beat = time.process_time()
                self._due = self.clock() + self.every
                await asyncio.sleep(self.every)
        finally:
            self._stop.set()
            gc.callbacks.remove(self._on_gc)
            await asyncio.to_thread(thread.join, 2 * self.every + 1)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != self._loop_thread:
            return
        if phase == "start":
            self._gc_started = self.clock()
        elif self._gc_started is not None:
            took = self.clock() - self._gc_started
            self._gc_total += took
            self._gc_started = None
            self.gc_count += 1
            if took > self.gc_longest[0]:
                self.gc_longest = (took, info.get("generation", -1))

    def _watch(self) -> None:
        current: Stall | None = None
        stalled_due = 0.0
        while not self._stop.wait(self.every):
            due, now = self._due, self.clock()
            if current is not None and due != stalled_due:
                # the heartbeat ran again: the stall ended about when it was set
                current.lasted = due - self.every - stalled_due
                current.gc_seconds = self._gc_at_beat - self._gc_before
                current.cpu_seconds = self._cpu_at_beat - self._cpu_before
                current.process_cpu_seconds = self._proc_at_beat - self._proc_before
                log.warning(
                    "loop_stall_over",
                    stalled_ms=round(current.lasted * 1000),
                    gc_ms=round(current.gc_seconds * 1000),
                    cpu_ms=round(current.cpu_seconds * 1000),
                    process_cpu_ms=round(current.process_cpu_seconds * 1000),
                )
                current = None
            late = now - due
            if current is None and late > self.threshold:
                current = Stall(late, self._stack())
                stalled_due, self._gc_before = due, self._gc_at_beat
                self._cpu_before = self._cpu_at_beat
                self._proc_before = self._proc_at_beat
                self.count += 1
                self.stalls = [*self.stalls[-(self.keep - 1) :], current]
                log.warning(
                    "loop_stall",
                    blocked_ms=round(late * 1000),
                    threshold_ms=round(self.threshold * 1000),
                    in_gc=self._gc_started is not None,
                    stack=current.stack,
                )

    def _stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread or -1)
        if frame is None:
            return "(loop thread gone)"
        return "".join(traceback.format_stack(frame)[-STACK_FRAMES:])

    def gc_summary(self) -> str:
        took, generation = self.gc_longest
        return (
            f"{self.gc_count} collections on the loop, {self._gc_total * 1000:.0f} ms in all, "
            f"longest {took * 1000:.1f} ms (generation {generation})"
        )

    def summary(self) -> str:
        """One line for a test's or a benchmark's report."""
        if not self.count:
            return f"no stall over {self.threshold * 1000:.0f} ms; {self.gc_summary()}"
        longest = max(self.stalls, key=lambda s: s.lasted or s.blocked)
        return (
            f"{self.count} stall(s) over {self.threshold * 1000:.0f} ms, longest "
            f"{(longest.lasted or longest.blocked) * 1000:.0f} ms "
            f"(gc {longest.gc_seconds * 1000:.0f} ms); {self.gc_summary()}; in:\n{longest.stack}"
        )
