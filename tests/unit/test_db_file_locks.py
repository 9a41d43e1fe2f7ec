"""A second engine in a process already connected must not drop that process's SQLite locks.

Found by trying the demo as a user: `serve` (its CLI had made an engine before) held a WAL
that a CLI command deleted on exit, so `agent grant` never reached the running serve.
Closing any descriptor of a file drops every POSIX lock the process holds on it."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

from asterisk_cube.db.session import make_engine


def test_a_cli_process_does_not_delete_the_wal_of_a_connected_process(tmp_path):
    path = tmp_path / "cube.db"
    url = f"sqlite:///{path}"
    first = make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    held = first.connect()  # like serve: a connection kept open (and its locks)
    held.execute(text("SELECT count(*) FROM t")).scalar()
    make_engine(url).dispose()  # a second engine in the same process (demo run -> serve)
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('INSERT INTO t VALUES (1)'); c.commit(); c.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    held.rollback()
    assert held.execute(text("SELECT count(*) FROM t")).scalar() == 1
    assert path.with_name("cube.db-wal").exists()
    held.close()
    first.dispose()
