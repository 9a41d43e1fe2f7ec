"""Ordered write-behind: state changes are applied in memory at once and written to the
database shortly after, in order, by one worker thread.

Why: the call distributor decides on the event loop, and a caller is waiting for that
decision. Writing every offer, accept and state change synchronously put three SQLite
transactions (2-4 ms each) between a caller's arrival and the originate to the agent
(docs/benchmarks.md, "Inbound dispatch"). With the journal the loop only *queues* the
writes; the worker writes whatever has queued up in one transaction, so a burst of calls
costs one commit, and the sqlite3 driver releases the GIL while SQLite works.

Guarantees:

* **Order**: operations are written in the order they were queued (one worker, FIFO),
  so a later change of a row never lands before an earlier one.
* **Read your writes**: :meth:`flush` writes everything queued so far before it returns;
  code that reads what it has just changed calls it first (the distributor does so for
  every synchronous transaction it opens).
* **No lost batch for one bad operation**: if a batch fails, its operations are retried
  one by one in their own transactions; only the failing one is dropped, logged
  (``journal_write_failed``) and counted in :attr:`failures`.
* **Durability window**: a queued change reaches the database ``delay`` (250 ms) plus a
  few milliseconds later: the worker starts once the loop has had time to finish the
  call it is handling (offer, accept, originate), since the worker needs the GIL too,
  and a batch collects a quarter second of changes: at 5 calls/s that is ~4
  transactions a second instead of ~25 with 20 ms (issue #19: CPU per call).
  If the process is killed (SIGKILL) in that window the change is lost; a clean stop
  (:meth:`close`) writes everything. ``serve`` rebuilds from Asterisk and the database on
  start (``Distributor.recover``), so a lost change is at worst a stale state row.

An operation is a callable taking an open :class:`~sqlalchemy.orm.Session`; its optional
``then`` callback gets the operation's result on the event loop after the commit (e.g.
the id of an inserted row).

**Batched operations** (issue #19): a function marked with :func:`batched` (queued as
``op(session, *args, **kwargs)`` through an object with ``.op``, ``.args`` and ``.kwargs``,
like the distributor's ``Write``) is not run one call at a time: every call of it in a
batch is handed, in queue order, to its ``write_many(session, [(op, args, kwargs), ...])``
in the same transaction, so one ``executemany`` replaces a statement per call. When:

* ``batched(write_many)``: once the batch's other operations have run. For writes that
  nothing else in the batch reads or depends on (an agent's status row, its state log).
* ``batched(write_many, ordered=True)``: before the next operation of the batch that is
  not batched (so it sees their rows), and at the end before the others. For the call
  records (a call's row, legs, offers, missed call), which later operations may update.

Their result is None; if the batch fails they are retried one by one like any operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.db.session import transaction
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

Operation = Callable[[Session], Any]
Then = Callable[[Any], None]
BatchedCall = tuple[Callable, tuple, dict]  # (the batched function, args, kwargs)
WriteMany = Callable[[Session, list[BatchedCall]], None]


def batched(write_many: WriteMany, *, ordered: bool = False) -> Callable[[Callable], Callable]:
    """Mark an operation function whose calls in one batch are written together by
    ``write_many(session, [(fn, args, kwargs), ...])`` (see the module doc)."""

    def mark(fn: Callable) -> Callable:
        fn.write_many = write_many  # type: ignore[attr-defined]
        write_many.ordered = ordered  # type: ignore[attr-defined]
        return fn

    return mark


def _batched_call(op: Any) -> tuple[WriteMany, BatchedCall] | None:
    """``(write_many, (fn, args, kwargs))`` if ``op`` is a queued call of a batched
    function."""
    fn = getattr(op, "op", None)
    write_many = getattr(fn, "write_many", None)
    if fn is None or write_many is None:
        return None
    return write_many, (fn, tuple(op.args), dict(op.kwargs))


def _write_groups(s: Session, grouped: dict[WriteMany, list[BatchedCall]], final: bool) -> None:
    """Write the batched calls collected so far: the ordered ones (all of them if
    ``final``, the ordered first)."""
    for write_many in sorted(grouped, key=lambda w: not getattr(w, "ordered", False)):
        if final or getattr(write_many, "ordered", False):
            write_many(s, grouped.pop(write_many))


class Journal:
    """Queue database operations; a worker thread writes them in order, in batches."""

    def __init__(
        self, sessions: sessionmaker[Session], name: str = "journal", delay: float = 0.25
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.delay = delay
        self.failures = 0
        self.last_failure_at: float | None = None  # time.monotonic() (readiness, issue #15)
        self.on_flush: Callable[[float], None] | None = None  # seconds per batch (metrics)
        # last thing in each batch's transaction (the panel's NOTIFY to other nodes)
        self.before_commit: Callable[[Session], None] | None = None
        self.written = 0
        self.batches = 0
        self._ops: deque[tuple[Operation, Then | None]] = deque()
        self._lock = threading.Lock()  # held while a batch is written (worker or flush)
        self._executor: ThreadPoolExecutor | None = None
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # ------------------------------------------------------------------ queueing

    def write(self, op: Operation, then: Then | None = None) -> None:
        """Queue ``op``; it is written after everything queued before it."""
        self._ops.append((op, then))
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._closed:
            self.flush()  # no event loop (CLI, plain tests): write through at once
            return
        self._loop = loop
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"cube-{self.name}")
        self._scheduled = True
        # Not at once: the worker needs the GIL too, and the loop is in the middle of
        # handling a call (offer, accept, originate follow within milliseconds).
        loop.call_later(self.delay, self._hand_to_worker)

    def hurry(self) -> None:
        """Write what is queued now, not after ``delay``: for a change another process
        waits for (the global queue's notifications, acd/crossnode.py)."""
        if self._scheduled and self._loop is not None and self._executor is not None:
            self._executor.submit(self._flush_in_worker)

    def _hand_to_worker(self) -> None:
        if self._executor is None:  # closed meanwhile (close() wrote everything)
            self._scheduled = False
            return
        self._executor.submit(self._flush_in_worker)

    @property
    def pending(self) -> int:
        return len(self._ops)

    # ------------------------------------------------------------------ writing

    def _flush_in_worker(self) -> None:
        # Cleared before draining: an operation queued from now on either is taken by
        # this flush or schedules the next one, never neither.
        self._scheduled = False
        try:
            self.flush()
        except Exception as exc:  # pragma: no cover - flush logs and counts its errors
            log.error("journal_flush_failed", journal=self.name, error=repr(exc))

    def flush(self) -> int:
        """Write everything queued so far (in this thread); return how many operations."""
        with self._lock:
            batch: list[tuple[Operation, Then | None]] = []
            while self._ops:
                batch.append(self._ops.popleft())
            if not batch:
                return 0
            started = time.perf_counter()
            results = self._write_batch(batch)
            if self.on_flush is not None:
                self.on_flush(time.perf_counter() - started)
            self.batches += 1
            self.written += len(batch)
        for (_op, then), result in zip(batch, results, strict=True):
            if then is not None and result is not _FAILED:
                self._call_back(then, result)
        return len(batch)

    def _write_batch(self, batch: list[tuple[Operation, Then | None]]) -> list[Any]:
        try:
            with transaction(self.sessions) as s:
                results = []
                grouped: dict[WriteMany, list[BatchedCall]] = {}
                for op, _then in batch:
                    call = _batched_call(op)
                    if call is None:
                        if grouped:  # it may read or update what they write
                            _write_groups(s, grouped, final=False)
                        results.append(op(s))
                    else:
                        grouped.setdefault(call[0], []).append(call[1])
                        results.append(None)
                _write_groups(s, grouped, final=True)
                if self.before_commit is not None:
                    self.before_commit(s)
                return results
        except Exception as exc:
            log.warning("journal_batch_failed", journal=self.name, ops=len(batch), error=repr(exc))
        results = []
        for op, _then in batch:
            try:
                with transaction(self.sessions) as s:
                    result = op(s)
                results.append(result)  # after the commit: it may fail too
            except Exception as exc:
                self.failures += 1
                self.last_failure_at = time.monotonic()
                results.append(_FAILED)
                log.error(
                    "journal_write_failed",
                    journal=self.name,
                    op=getattr(op, "__qualname__", repr(op)),
                    error=repr(exc),
                )
        return results

    def _call_back(self, then: Then, result: Any) -> None:
        loop = self._loop
        on_loop = False
        with contextlib.suppress(RuntimeError):  # not on a loop: the worker thread
            on_loop = asyncio.get_running_loop() is loop
        if loop is None or on_loop or loop.is_closed():
            then(result)
        else:
            loop.call_soon_threadsafe(then, result)

    async def drain(self) -> None:
        """Wait until everything queued so far is written (without blocking the loop)."""
        if self._executor is None:
            self.flush()
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, self.flush)
        await asyncio.sleep(0)  # let ``then`` callbacks scheduled by the worker run

    def close(self) -> None:
        """Write what is left and stop the worker."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.flush()


_FAILED = object()
