"""Issue #12 item 6: the SQLite database (password hashes, contacts), its WAL and SHM are
0600 and a data directory we create is 0700 — they were 0644 and 0755.

Existing files found looser are tightened when the database is opened (``serve``, any
CLI command); an existing directory is left alone (it may be shared on purpose).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from sqlalchemy import text

from asterisk_cube.db.session import make_engine

CLI = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    old = os.umask(0o022)  # what a service or a root shell has
    yield
    os.umask(old)


def test_db_upgrade_creates_private_files(tmp_path):
    data = tmp_path / "data"  # does not exist yet: the CLI creates it
    (tmp_path / "cube.toml").write_text("")
    env = dict(
        os.environ,
        ASTERISK_CUBE_CONFIG=str(tmp_path / "cube.toml"),
        ASTERISK_CUBE_DATA_DIR=str(data),
    )
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    db = data / "cube.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # a write with a reader open: WAL and SHM exist
        conn.execute(text("UPDATE agents SET name = name"))
        with engine.connect() as reader:
            reader.execute(text("SELECT count(*) FROM agents")).scalar()
            assert (data / "cube.db-wal").exists() and (data / "cube.db-shm").exists()
            assert mode(data) == 0o700
            for name in ("cube.db", "cube.db-wal", "cube.db-shm"):
                assert mode(data / name) == 0o600, name
    engine.dispose()


def test_loose_files_are_tightened_on_open(tmp_path):
    db = tmp_path / "old.db"
    for name in ("old.db", "old.db-wal", "old.db-shm"):
        (tmp_path / name).write_bytes(b"")
        os.chmod(tmp_path / name, 0o644)
    make_engine(f"sqlite:///{db}").dispose()
    for name in ("old.db", "old.db-wal", "old.db-shm"):
        assert mode(tmp_path / name) == 0o600, name
