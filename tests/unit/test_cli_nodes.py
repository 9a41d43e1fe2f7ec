"""``asterisk-cube node list``: every node with its lease, live or down (issue #14)."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.config import load_settings
from asterisk_cube.db.session import make_engine, make_sessionmaker
from asterisk_cube.services.nodes import NodeLease


def test_node_list_shows_live_and_down_nodes(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(cli, ["node", "list"]).output == "(none)\n"
    settings = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path / "data")})
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    NodeLease(sessions, "east", host="pbx1", pid=11, clock=lambda: now).take()
    old = now - dt.timedelta(minutes=5)
    NodeLease(sessions, "west", host="pbx2", pid=22, clock=lambda: old).take()
    engine.dispose()
    result = runner.invoke(cli, ["node", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], r["live"], r["host"], r["pid"]) for r in rows] == [
        ("east", True, "pbx1", 11),
        ("west", False, "pbx2", 22),
    ]
    table = runner.invoke(cli, ["node", "list"]).output.splitlines()
    assert table[0].split() == ["NAME", "LIVE", "HOST", "PID", "STARTED_AT", "HEARTBEAT_AT"]
