"""Engines, sessions and schema migrations.

One engine per database URL. SQLite gets WAL mode, a busy timeout and foreign
keys switched on, so the embedded default behaves like PostgreSQL where it
matters (cascades, concurrent readers while ``serve`` writes).

The SQLite file holds password hashes and contacts: it is created mode 0600 (SQLite
gives its ``-wal`` and ``-shm`` files the database file's mode) in a directory created
0700. Files found looser on open are tightened (with a warning); a directory that
already existed is left as it is (it may be shared on purpose) but a warning says so.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.config import ConfigError

from ..logs import get_logger

log = get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_sqlite_file(path: Path) -> None:
    """Make ``path`` (and its ``-wal``/``-shm``) exist with mode 0600, in a directory
    that is 0700 if we create it (see the module docstring)."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    elif folder.stat().st_mode & 0o077:
        log.warning(
            "db_directory_not_private",
            path=str(folder),
            mode=oct(stat.S_IMODE(folder.stat().st_mode)),
            hint="chmod 700 it unless others must reach it",
        )
    # created here with 0600 before SQLite opens it (SQLite would make it 0644). Never open
    # and close an existing database file: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, so a process already connected (serve making a
    # second engine) would look unconnected to others, and a CLI command closing its last
    # connection would then delete the WAL that serve still writes to.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(file, PRIVATE_FILE)
            log.warning("db_file_mode_tightened", path=str(file), was=oct(mode), now="0o600")


class DatabaseUrlError(ConfigError):
    """The database URL cannot be used as written; the message names it and says why."""


class NoDatabase(ConfigError):
    """A command that only reads found no database file at the configured path."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``None`` for another database or an in-memory one)."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _parse(url: str):
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(f"database url {url!r} is not a database URL") from None


def check_url(url: str) -> None:
    """Refuse a URL that would not do what it seems to: a SQLite path relative to the current
    directory (``sqlite:///var/lib/x.db`` is ``./var/lib/x.db``: an absolute path takes four
    slashes), or a driver that is not installed (PostgreSQL needs ``asterisk-cube[postgres]``).
    """
    parsed = _parse(url)
    path = sqlite_path(url)
    if path is not None and not path.is_absolute():
        raise DatabaseUrlError(
            f"database url {url!r} names {path}, a path relative to the current directory "
            f"({Path.cwd() / path}); write an absolute path with four slashes, "
            f"e.g. sqlite:////{path}"
        )
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise DatabaseUrlError(
            f"database url {_hide_password(url)!r}: unknown database {parsed.drivername!r}"
        ) from None
    except ImportError as exc:
        if parsed.get_backend_name() == "postgresql":
            how = "install asterisk-cube[postgres] (pip install 'asterisk-cube[postgres]')"
        else:
            how = "install it"
        raise DatabaseUrlError(
            f"database url {_hide_password(url)!r} needs a driver that is not installed "
            f"({exc}): {how}"
        ) from None


def require_database(url: str) -> None:
    """For commands that only read: refuse (naming the path) when the SQLite file does not
    exist, rather than creating an empty database there."""
    check_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NoDatabase(
            f"no database at {path}: run `asterisk-cube db upgrade` to create it, or set "
            "[database] url (ASTERISK_CUBE_DATABASE_URL) to the existing one"
        )


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, *, application_name: str | None = None, **kwargs) -> Engine:
    """An engine for ``url`` (checked with :func:`check_url`). A SQLite file and its folder
    are created on first connect: commands that only read call :func:`require_database`.
    On PostgreSQL ``application_name`` names the connections in ``pg_stat_activity`` (serve
    passes its node's name: which node holds a lock or a slow query shows there)."""
    check_url(url)
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None and not str(path).startswith("file:"):
            private_sqlite_file(path)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if application_name:
        kwargs["connect_args"] = {
            "application_name": application_name,
            **kwargs.get("connect_args", {}),
        }
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that commit without expiring what they loaded, and bump the configuration
    version when they change configuration (``db.config_version``): every running
    ``serve`` then reloads it."""
    from asterisk_cube.db.config_version import track

    return track(sessionmaker(engine, expire_on_commit=False))


def engine_of(factory: sessionmaker[Session]) -> Engine:
    """The engine a session factory is bound to: for one Core statement on a plain
    connection where an ORM session per call would cost more (issue #19)."""
    return factory.kw["bind"]


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def schema_status(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision in the database, newest revision shipped)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
