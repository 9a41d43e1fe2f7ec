"""Database helpers shared by the tests of the distributor, its journal and id allocator."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def call_row(call_id: int | None = None, started_at: dt.datetime = NOW) -> m.Call:
    """A minimal inbound call row (``call_id`` None: the database picks the id)."""
    return m.Call(
        id=call_id,
        direction=m.Direction.INBOUND,
        kind=m.CallKind.SERVICE,
        state=m.CallState.WAITING,
        caller_number="1",
        dialed_number="2",
        started_at=started_at,
    )


def db(d):
    """The database once the distributor's write-behind journal is written."""
    d.journal.flush()
    return transaction(d.sessions)


@contextlib.contextmanager
def migrated_sqlite(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a new SQLite database in ``tmp_path``, migrated to the newest schema
    (what `asterisk-cube db upgrade` makes); the engine is disposed afterwards."""
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()
