"""Primary keys handed out before their row is written (for :mod:`.journal` inserts).

A call's id is on the agent's desktop, in its offer and in the ARI bridge name the
moment the caller arrives, but with write-behind its row reaches the database a few
milliseconds later. So the id is allocated first:

* **PostgreSQL**: from the table's own sequence, a block at a time (``nextval`` is
  atomic across connections, so several ``serve`` nodes and any other writer that
  relies on the column default never collide);
* **SQLite** (one ``serve`` process, the embedded default): the table's maximum, read
  once, then counted up in memory (no query on the call path). So every writer in the
  process that inserts into these tables must take its ids from the same allocator
  (the distributor and the dialer do: ``Distributor.ids``); other processes (the CLI)
  never insert calls, offers or missed calls.
"""

from __future__ import annotations

import threading
from collections import deque

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import DeclarativeBase

from . import models as m


class IdAllocator:
    """``next(Model)`` -> a fresh primary key for that model's table."""

    def __init__(self, engine: Engine, block: int = 20) -> None:
        self.engine = engine
        self.block = block
        self._postgres = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._pools: dict[str, deque[int]] = {}
        self._last: dict[str, int] = {}

    def next(self, model: type[DeclarativeBase]) -> int:
        table = m.table_of(model)
        with self._lock:
            if self._postgres:
                pool = self._pools.setdefault(table.name, deque())
                if not pool:
                    pool.extend(self._reserve(table.name))
                return pool.popleft()
            last = self._last.get(table.name)
            if last is None:  # first use: one read, then counted here
                with self.engine.connect() as conn:
                    last = conn.scalar(select(func.max(table.c.id))) or 0
            self._last[table.name] = last + 1
            return last + 1

    def _reserve(self, table: str) -> list[int]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"table": table, "n": self.block},
            )
            return sorted(r[0] for r in rows)
