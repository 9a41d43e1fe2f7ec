"""``demo run --fresh`` (``./scripts/demo --fresh``): the old demo database is moved aside
with a timestamp, said in one line, before the sandbox starts; nothing is deleted."""

import sqlite3

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import SandboxError

STOP = "stopped here by the test: no sandbox"


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    """The demo's data directory, and a sandbox that refuses to start (the move is done
    by then)."""
    data = tmp_path / "demo"
    data.mkdir()
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(data))
    monkeypatch.delenv("ASTERISK_CUBE_DATABASE_URL", raising=False)

    def up(self, *args, **kwargs):
        raise SandboxError(STOP)

    monkeypatch.setattr(SandboxInstance, "up", up)
    return data


def run_demo(*args):
    return CliRunner().invoke(cli, ["demo", "run", "--base-port", "52000", *args])


def old_database(path):
    with sqlite3.connect(path) as db:
        db.execute("create table old_demo (x)")
    return path.read_bytes()


def test_fresh_moves_the_old_database_aside(demo_dir):
    db = demo_dir / "cube.db"
    before = old_database(db)
    (demo_dir / "cube.db-wal").write_bytes(b"wal")
    result = run_demo("--fresh")
    assert STOP in result.output
    assert not db.exists() and not (demo_dir / "cube.db-wal").exists()
    (aside,) = [p for p in demo_dir.iterdir() if p.name.startswith("cube.db.")
                and not p.name.endswith("-wal")]  # fmt: skip
    assert aside.read_bytes() == before
    assert (demo_dir / f"{aside.name}-wal").read_bytes() == b"wal"
    lines = [ln for ln in result.output.splitlines() if "aside" in ln]
    assert lines == [f"moved the old demo database aside to {aside}: starting from an empty one"]


def test_without_fresh_the_database_stays(demo_dir):
    db = demo_dir / "cube.db"
    before = old_database(db)
    result = run_demo()
    assert STOP in result.output and "aside" not in result.output
    assert db.read_bytes() == before
    assert [p.name for p in demo_dir.iterdir()] == ["cube.db"]


def test_fresh_without_an_old_database_says_so(demo_dir):
    result = run_demo("--fresh")
    assert f"fresh demo database: there is none at {demo_dir / 'cube.db'} yet" in result.output


def test_fresh_refuses_another_database_naming_it(demo_dir, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATABASE_URL", "postgresql+psycopg://cube:secret@db/cube")
    result = run_demo("--fresh")
    assert result.exit_code == 1
    assert STOP not in result.output  # refused before the sandbox starts
    assert "secret" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: --fresh: the demo database postgresql+psycopg://cube:***@db/cube is not a "
        "SQLite file; empty it yourself or unset ASTERISK_CUBE_DATABASE_URL"
    ]


def demo_database_held_by(demo_dir, pid: int, host: str | None = None):
    """The demo database (migrated) with node 'demo' leased by ``pid`` on this host."""
    import datetime as dt
    import socket

    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade

    url = f"sqlite:///{demo_dir / 'cube.db'}"
    upgrade(url)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    with transaction(make_sessionmaker(engine)) as s:
        s.add(
            m.Node(
                name="demo", host=host or socket.gethostname(), pid=pid, started_at=now,
                heartbeat_at=now, lease_until=now + dt.timedelta(seconds=15),
            )
        )  # fmt: skip
    engine.dispose()


def test_fresh_refuses_while_a_demo_serve_runs_naming_its_pid(demo_dir):
    """``./scripts/demo --fresh`` beside a running demo: moving its database away under
    it would leave that serve writing a file nobody reads; one line naming the pid."""
    import subprocess
    import sys

    serve = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        demo_database_held_by(demo_dir, serve.pid)
        before = sorted(p.name for p in demo_dir.iterdir())
        result = run_demo("--fresh")
        assert result.exit_code == 1, result.output
        assert STOP not in result.output  # refused before the sandbox starts
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"Error: --fresh: a demo serve is running on {demo_dir / 'cube.db'}")
        assert f"(pid {serve.pid} on " in line and "stop it first" in line
        assert sorted(p.name for p in demo_dir.iterdir()) == before  # nothing moved
    finally:
        serve.kill()
        serve.wait()
    # that serve gone (kill -9): its lease is stale, --fresh moves the database aside
    result = run_demo("--fresh")
    assert "moved the old demo database aside" in result.output, result.output
    assert not (demo_dir / "cube.db").exists()
