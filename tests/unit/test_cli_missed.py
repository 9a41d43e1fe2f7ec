"""``asterisk-cube missed list`` (F-I7): filters by line, since and state; table, JSON and
CSV; bad input is one line naming the option."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction

UTC = dt.UTC


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    monkeypatch.setenv("ASTERISK_CUBE_REPORT_ZONE", "Europe/Oslo")
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    invoke("line", "add", "4721000001", "--name", "Support")
    invoke("line", "add", "4721000002", "--name", "VIP")
    invoke("agent", "add", "kari", "--endpoint", "PJSIP/agent01", "--line", "4721000001")
    settings = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path / "data")})
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        lines = {ln.did: ln.id for ln in s.query(m.Line)}
        kari = s.query(m.Agent).one().id
        for n, (did, at, processed) in enumerate(
            [
                ("4721000001", dt.datetime(2026, 11, 22, 22, 30, tzinfo=UTC), False),
                ("4721000002", dt.datetime(2026, 11, 23, 8, 0, tzinfo=UTC), False),
                ("4721000001", dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC), True),
            ],
            start=1,
        ):
            call = m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.SERVICE,
                state=m.CallState.MISSED,
                line_id=lines[did],
                caller_number=f"9100000{n}",
                started_at=at,
            )
            s.add(call)
            s.flush()
            missed = m.MissedCall(
                call_id=call.id, line_id=lines[did], caller_number=f"9100000{n}", missed_at=at
            )
            if processed:
                back = m.Call(
                    direction=m.Direction.OUTBOUND,
                    kind=m.CallKind.MANUAL,
                    state=m.CallState.ENDED,
                    line_id=lines[did],
                    agent_id=kari,
                    started_at=at + dt.timedelta(minutes=5),
                    answered_at=at + dt.timedelta(minutes=5, seconds=10),
                    ended_at=at + dt.timedelta(minutes=7, seconds=10),
                )
                s.add(back)
                s.flush()
                missed.callback_call_id = back.id
                missed.processed_at = at + dt.timedelta(minutes=8)
                missed.processed_by = kari
            s.add(missed)
    return invoke


def listed(run, *args):
    return json.loads(run("missed", "list", *args, "--format", "json").output)


def test_open_ones_by_default_oldest_first_in_the_zone(run):
    rows = listed(run)
    assert [r["caller"] for r in rows] == ["91000001", "91000002"]
    assert rows[0]["missed_at"] == "2026-11-22 23:30:00"  # Oslo
    assert rows[0]["line"] == "4721000001" and rows[0]["line_name"] == "Support"
    assert rows[0]["processed"] is False and rows[0]["callback_state"] == ""


def test_filters_by_line_since_and_state(run):
    assert [r["caller"] for r in listed(run, "--line", "4721000002")] == ["91000002"]
    assert [r["caller"] for r in listed(run, "--since", "2026-11-23")] == ["91000002"]
    assert [r["caller"] for r in listed(run, "--state", "all", "--since", "2026-11-23 08:30")] == [
        "91000002",
        "91000003",
    ]
    (done,) = listed(run, "--state", "processed")
    assert done["processed_by"] == "kari" and done["callback_state"] == "ended"
    assert done["callback_talk_s"] == 120 and done["processed_at"] == "2026-11-23 10:08:00"


def test_table_and_csv(run):
    table = run("missed", "list", "--state", "all").output.splitlines()
    assert table[0].split() == [
        "ID", "MISSED_AT", "LINE", "CALLER", "PROCESSED_AT", "PROCESSED_BY", "CALLBACK_STATE"
    ]  # fmt: skip
    assert len(table) == 4
    csv = run("missed", "list", "--format", "csv").output.splitlines()
    assert csv[0].startswith("id,missed_at,line,line_name,caller") and len(csv) == 3


def test_bad_input_is_one_line_naming_the_option(run):
    for args, words in (
        (("--since", "yesterday"), "--since"),
        (("--line", "999"), "999"),
        (("--zone", "Mars/Base"), "--zone"),
        (("--state", "odd"), "--state"),
    ):
        result = run("missed", "list", *args, ok=False)
        assert result.exit_code != 0 and words in result.output, result.output
