"""Fixtures shared by unit and integration tests.

``postgres_url``: a throwaway real PostgreSQL server (Debian's postgresql package) for the whole
session, on its own port, data in a temp dir; tests that use it get the ``postgres`` marker.
Tests under tests/integration/ get the ``integration`` marker.

This directory is on sys.path (pytest's rootdir conftest), so tests can ``import sippkit``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import children
import hypothesis
import pytest
import workers

# pytest-xdist (./scripts/test runs two workers): this worker's own sandbox, peer and
# PostgreSQL ports, set before sandbox_fixtures and the test modules read them
os.environ.update(workers.worker_env(os.environ))

# The sandbox Asterisk fixtures, for integration and browser tests alike.
pytest_plugins = ["sandbox_fixtures"]

# Hypothesis: no per-example deadline (a busy machine makes a 200 ms deadline a coin
# toss, issue #11 item 11). In CI (``CI`` set) the examples are the same on every run, so
# a red build names a change, not a lucky draw; runs elsewhere draw new ones and find what
# CI would not (two numbers-normalising bugs were found that way): add each as @example.
hypothesis.settings.register_profile("default", deadline=None)
hypothesis.settings.register_profile("ci", deadline=None, derandomize=True)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "default")

PG_PORT = int(os.environ.get("ASTERISK_CUBE_TEST_PG_PORT", "25432"))
PG_VERSIONS = ("15", "16", "17")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM stops a run like Ctrl-C does: finalizers run and stop the SIPp phones, serve
    # processes and the sandbox Asterisk the run started (children.py is the backstop)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        is_worker = workers.worker_index(os.environ) is not None
        controller = bool(config.getoption("numprocesses", None)) and not is_worker
        signal.signal(
            signal.SIGTERM,
            children.sigterm_to_workers_too
            if controller
            else children.sigterm_to_keyboard_interrupt,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = Path(__file__).parent / "integration"
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if integration_dir in item.path.parents:
            item.add_marker(pytest.mark.integration)
    if workers.worker_index(os.environ) is not None:
        # two workers, whole files each (scripts/test: --dist loadfile, collection order):
        # the longest files first, so neither worker starts a 2-minute test at the end
        here = Path(__file__).parent
        rank = {here / name: n for n, name in enumerate(workers.LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path, len(rank)))  # stable


def _pg_bin() -> Path | None:
    for version in PG_VERSIONS:
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free TCP port")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of a fresh database on a private server."""
    pytest.importorskip("psycopg", reason="psycopg[binary] is a test dependency: pip install it")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server not found under /usr/lib/postgresql: run scripts/setup")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root but there is no `postgres` user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    tmp = Path(tempfile.mkdtemp(prefix="cube-pg-"))
    if owner:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    data, log = tmp / "data", tmp / "server.log"
    port = _free_port(PG_PORT)

    def run(*cmd: str, timeout: float = 60) -> None:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-800:]
            extra = log.read_text()[-800:] if log.exists() else ""
            pytest.fail(f"{Path(cmd[0]).name} failed: {tail}\n{extra}")

    started = time.monotonic()
    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "cube",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    options = (
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user="cube", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE cube")
        print(f"\nPostgreSQL on 127.0.0.1:{port} ready in {time.monotonic() - started:.1f} s")
        yield f"postgresql+psycopg://cube@127.0.0.1:{port}/cube"
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the session's PostgreSQL server (dropped after)."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "t_" + uuid.uuid4().hex[:10]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
