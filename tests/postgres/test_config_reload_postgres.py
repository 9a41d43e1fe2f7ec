"""serve's configuration watcher on PostgreSQL: the NOTIFY wakes it (the SQLite cases are in
tests/unit/test_config_reload.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction
from asterisk_cube.services import provisioning as p


@pytest.mark.integration
async def test_on_postgresql_the_notification_wakes_the_watcher_at_once(pg_db):
    """The poll is 30 s here: only the NOTIFY sent with the bump can wake it in time."""
    from asterisk_cube.db.session import upgrade

    upgrade(pg_db)
    engine = make_engine(pg_db)
    sessions = make_sessionmaker(engine)
    watcher = ConfigWatcher(engine, interval=30)
    watcher.prime()
    reloaded = asyncio.Event()
    watcher.add("test", reloaded.set)
    task = asyncio.create_task(watcher.run())
    try:
        assert await asyncio.to_thread(watcher.listening.wait, 10)
        with transaction(sessions) as s:
            p.add_line(s, "4721000088", "Notified")
        await asyncio.wait_for(reloaded.wait(), 5)
        assert watcher.changes == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        engine.dispose()
