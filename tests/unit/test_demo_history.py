"""The demo's generated history (issue #16): every report has content for the last week
(the reports page's default period), nothing is live or in the future, every agent's state
log is a consistent chain, and a database that already has calls is refused."""

from __future__ import annotations

import datetime as dt
import json
from itertools import pairwise

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from asterisk_cube.cli import cli
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.demo.history import generate_history
from asterisk_cube.services.provisioning import ProvisioningError


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("history")
    url = f"sqlite:///{path / 'cube.db'}"
    env = {"ASTERISK_CUBE_DATABASE_URL": url, "ASTERISK_CUBE_DATA_DIR": str(path)}
    upgrade(url)
    result = CliRunner().invoke(
        cli, ["demo", "load", "--agents", "6", "--history-days", "9"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "history of 9 days" in result.output
    return url, env


@pytest.mark.parametrize("report", ["inbound", "outbound", "agents", "enquiries"])
def test_every_report_has_content_for_the_last_week(demo_db, report):
    _url, env = demo_db
    result = CliRunner().invoke(cli, ["report", report, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert rows, report
    if report == "inbound":  # every demo line had calls
        assert len(rows) == 3 and all(r["answered"] > 0 for r in rows)
    if report == "outbound":
        assert rows[0]["attempts"] > 0 and rows[0]["reached"] > 0


def test_nothing_live_nothing_in_the_future_and_consistent_agent_states(demo_db):
    url, _env = demo_db
    now = dt.datetime.now(dt.UTC)
    with make_sessionmaker(make_engine(url))() as s:
        live = {
            m.CallState.WAITING,
            m.CallState.OFFERED,
            m.CallState.DIALING,
            m.CallState.CONNECTED,
        }
        assert not s.scalar(select(func.count()).select_from(m.Call).where(m.Call.state.in_(live)))
        latest = s.scalar(select(func.max(m.Call.ended_at)))
        assert latest is not None and latest.replace(tzinfo=dt.UTC) < now
        assert not s.scalar(
            select(func.count())
            .select_from(m.MissedCall)
            .where(m.MissedCall.processed_at.is_(None))
        )  # no backlog of missed calls on the desks
        chains: dict[int, list[m.AgentStateLog]] = {}
        for row in s.scalars(select(m.AgentStateLog).order_by(m.AgentStateLog.id)):
            chains.setdefault(row.agent_id, []).append(row)
        assert len(chains) >= 3
        for rows in chains.values():
            assert rows[0].from_state == m.AgentState.LOGGED_OUT
            assert rows[-1].to_state == m.AgentState.LOGGED_OUT
            for a, b in pairwise(rows):
                assert a.to_state == b.from_state and a.at <= b.at, (a.id, b.id)


def test_refused_on_a_database_with_calls(demo_db):
    url, _env = demo_db
    sessions = make_sessionmaker(make_engine(url))
    with pytest.raises(ProvisioningError, match="already has calls"), transaction(sessions) as s:
        generate_history(s, 3)
