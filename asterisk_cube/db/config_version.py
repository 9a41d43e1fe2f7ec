"""Configuration changes reach every running ``serve`` (issue #11 item 6).

``serve`` keeps configuration in memory so that calls never wait for the database: the
distributor's lines, agents (their grants, skills, endpoints) and pause reasons, the
dialer's campaigns, the FastAGI entry route's client configurations. The CLI (or another
node) changes the database, not that memory. One mechanism connects the two:

* **Bump.** Every session made by ``db.session.make_sessionmaker`` is tracked: when a
  flush writes a row of a configuration table (``CONFIG_MODELS``), the single row of
  ``config_version`` is incremented *in the same transaction*, and on PostgreSQL a
  ``NOTIFY asterisk_cube_config`` is sent with it (delivered at commit, never for a
  rollback). Nobody has to remember to call anything: a provisioning service, a CLI
  command or the panel that changes a line all bump it. The desk's own line choice
  (``agent_lines.chosen``) is state the distributor already holds, and does not count.
* **Watch.** :class:`ConfigWatcher`, a component of ``serve``, reads the version once per
  ``interval`` (1 s; one indexed read of one row, off the event loop) and, on PostgreSQL,
  is woken at once by the notification. When the version moved it calls each registered
  reload (the distributor rereads its configuration off the loop and applies it on the
  loop; the dialer rereads its campaigns at its next step; the entry cache drops its
  entries). A failing reload is logged and retried at the next check. Nothing on the
  call path reads the database for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)

CHANNEL = "asterisk_cube_config"
CHECK_INTERVAL = 1.0  # seconds between two reads of the version

# The tables ``serve`` caches (or derives cached decisions from). A write to any of them
# bumps the version. Calls, offers, agent status, contacts and the like are not
# configuration: the process that changes them owns them (or reads them when needed).
CONFIG_MODELS: tuple[type[m.Base], ...] = (
    m.Line,
    m.Agent,
    m.AgentLine,
    m.AgentSkill,
    m.Skill,
    m.PauseReason,
    m.Campaign,
    m.CallingWindow,
    m.Client,
    m.OpeningHours,
    m.SpecialDay,
    m.ClientException,
    m.Employee,
    m.FaqEntry,
    m.NoteRecipient,
    m.BlocklistEntry,
    m.EnquiryCategory,
    m.EnquiryTopic,
    m.RecordingPolicy,  # the recorder keeps each line's and campaign's policy
)

_CONFIG_TABLES = frozenset(m.table_of(model) for model in CONFIG_MODELS)

# Columns whose change alone is not provisioning: the desk's line choice is written by
# the distributor that already holds it in memory.
_NOT_CONFIG: dict[type, frozenset[str]] = {m.AgentLine: frozenset({"chosen"})}

_PENDING = "asterisk_cube.config_changed"
_BUMPED = "asterisk_cube.config_bumped"


def _changed_columns(obj: Any) -> set[str]:
    return {attr.key for attr in sa_inspect(obj).attrs if attr.history.has_changes()}


def changes_config(session: Session) -> bool:
    """Whether the session's pending changes touch a configuration table."""
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, CONFIG_MODELS):
            return True
    for obj in session.dirty:
        if not isinstance(obj, CONFIG_MODELS):
            continue
        changed = _changed_columns(obj)
        if changed - _NOT_CONFIG.get(type(obj), frozenset()):
            return True
    return False


def bump(conn: Connection) -> None:
    """Increment the version (and notify on PostgreSQL) in ``conn``'s transaction."""
    table = m.table_of(m.ConfigVersion)
    conn.execute(update(table).where(table.c.id == 1).values(version=table.c.version + 1))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def read_version(conn: Connection) -> int:
    """The current version (0 if the row is missing)."""
    table = m.table_of(m.ConfigVersion)
    return conn.execute(select(table.c.version).where(table.c.id == 1)).scalar() or 0


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if not session.info.get(_PENDING) and changes_config(session):
        session.info[_PENDING] = True


def _after_flush(session: Session, _context: Any) -> None:
    if session.info.pop(_PENDING, False) and not session.info.get(_BUMPED):
        bump(session.connection())
        session.info[_BUMPED] = True  # once per transaction


def _bulk_write(state: Any) -> None:
    """``session.execute(update(m.Agent)...)`` and the like bypass the flush: bump here."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if table in _CONFIG_TABLES and not state.session.info.get(_BUMPED):
        bump(state.session.connection())
        state.session.info[_BUMPED] = True


def _transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_BUMPED, None)
    elif transaction.nested:  # a savepoint may have taken the bump with it: bump again
        session.info.pop(_BUMPED, None)


def track(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Make every session of ``factory`` bump the version when it changes configuration."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "do_orm_execute", _bulk_write)
    event.listen(factory, "after_transaction_end", _transaction_ended)
    return factory


Reload = Callable[[], Any]  # a plain function or a coroutine function


class ConfigWatcher:
    """Notices configuration changes made by any process and runs the registered reloads.

    ``run()`` is a ``serve`` component. Register reloads with :meth:`add` before it starts;
    call :meth:`prime` before loading what the reloads refresh, so a change made while
    ``serve`` was starting is not missed."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = CHECK_INTERVAL,
        listen: bool | None = None,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.listen = engine.dialect.name == "postgresql" if listen is None else listen
        self.version: int | None = None
        self.reloads: list[tuple[str, Reload]] = []
        self.changes = 0  # versions acted on (for tests and the log)
        self.last_read_at: float | None = None  # time.monotonic() of the last good read
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self.listening = threading.Event()  # PostgreSQL: the LISTEN connection is up
        # other channels on the same LISTEN connection: called in the listen thread
        self.channels: dict[str, Callable[[], None]] = {}
        # ... and those whose payload matters (the global queue, acd/crossnode.py)
        self.payload_channels: dict[str, Callable[[str], None]] = {}
        # called (in the listen thread) each time LISTEN is up, the first time and after a
        # lost connection: what was notified meanwhile is lost, a listener may re-read
        self.on_listen: list[Callable[[], None]] = []

    def add(self, name: str, reload: Reload) -> None:
        self.reloads.append((name, reload))

    def read(self) -> int:
        with self.engine.connect() as conn:
            version = read_version(conn)
        self.last_read_at = time.monotonic()  # the database answers (readiness, issue #15)
        return version

    def prime(self) -> None:
        """Take the current version as the one already loaded."""
        self.version = self.read()

    async def check(self) -> bool:
        """Read the version; if it moved, run every reload. True if it reloaded."""
        version = await asyncio.to_thread(self.read)
        if version == self.version:
            return False
        started = time.monotonic()
        failed = []
        for name, reload in self.reloads:
            try:
                result = reload()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                failed.append(name)
                log.error("config_reload_failed", part=name, error=repr(exc))
        if failed:
            return False  # the version stays: retried at the next check
        log.info(
            "config_reloaded",
            version=version,
            previous=self.version,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        self.version = version
        self.changes += 1
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop.clear()
        if self.version is None:
            try:
                self.version = await asyncio.to_thread(self.read)
            except Exception as exc:
                log.warning("config_version_read_failed", error=repr(exc))
        if self.listen:
            threading.Thread(
                target=self._listen, args=(loop,), name="config-listen", daemon=True
            ).start()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                try:
                    await self.check()
                except Exception as exc:  # the database is away: try again later
                    log.warning("config_version_read_failed", error=repr(exc))
        finally:
            self._stop.set()

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """PostgreSQL: wake the watcher as soon as a bump is committed (a thread of its
        own, one connection; the poll goes on regardless, so a lost connection only
        delays a reload to the next interval)."""
        try:
            import psycopg
        except ImportError:  # another driver (psycopg2): the poll alone, at most 1 s late
            log.warning("config_listen_unavailable", reason="psycopg (3) is not installed")
            return
        url = self.engine.url.set(drivername="postgresql")  # libpq's URI, no SQLAlchemy driver
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    for channel in (CHANNEL, *self.channels, *self.payload_channels):
                        conn.execute(f"LISTEN {channel}")
                    self.listening.set()
                    for hook in self.on_listen:
                        hook()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.interval, stop_after=1):
                            other = self.channels.get(note.channel)
                            with_payload = self.payload_channels.get(note.channel)
                            if with_payload is not None:
                                with_payload(note.payload)
                            elif other is not None:
                                other()
                            else:
                                loop.call_soon_threadsafe(self._wake_up)
            except Exception as exc:
                self.listening.clear()
                if loop.is_closed():
                    return
                log.warning("config_listen_failed", error=repr(exc))
                self._stop.wait(self.interval)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()
