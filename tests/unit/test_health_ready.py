"""/health and /ready from the state the process holds (issue #15): core/health.py and
its web adapter, with a real write-behind journal and a real config watcher."""

import time
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text

from asterisk_cube.config import Settings
from asterisk_cube.core import health
from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.journal import Journal
from asterisk_cube.db.session import make_engine, make_sessionmaker, upgrade
from asterisk_cube.web.app import create_app


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def running_state(sessions, **extras):
    """A started serve's state: ARI up (pinged just now), AGI listening, AMI synced."""
    supervisor = SimpleNamespace(
        connected=True,
        alive_at=time.monotonic(),
        settings=SimpleNamespace(app="asterisk-cube"),
        connects=1,
        last_error="",
    )
    agi = SimpleNamespace(listening=True, bound_port=4573, sessions_total=0)
    monitor = SimpleNamespace(connected=True, synced=True, last_error="")
    watcher = ConfigWatcher(sessions.kw["bind"])
    watcher.prime()  # one good read: the database answers
    distributor = SimpleNamespace(journal=Journal(sessions, name="acd"))
    return SimpleNamespace(
        supervisor=supervisor,
        agi=agi,
        started_at=time.time(),
        components={},
        extras={
            "ami": monitor,
            "config_watcher": watcher,
            "distributor": distributor,
            **extras,
        },
    )


async def get(state, path):
    transport = httpx.ASGITransport(app=create_app(Settings(), state))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_ready_when_every_part_works(sessions):
    state = running_state(sessions)
    resp = await get(state, "/ready")
    assert resp.status_code == 200
    assert resp.json() == {
        "ready": True,
        "checks": {
            "started": "ok",
            "database": "ok",
            "journal": "ok",
            "ari": "ok",
            "ami": "ok",
            "agi": "ok",
        },
    }
    body = (await get(state, "/health")).json()
    assert body["status"] == "ok" and "problems" not in body
    assert body["journal"] == {"failures": 0, "pending": 0}


async def test_lost_writes_make_health_degraded_and_ready_fail(sessions):
    """The bug: /health said "ok" while the journal's writes were failing."""
    state = running_state(sessions)
    journal = state.extras["distributor"].journal

    def broken(s):
        s.execute(text("INSERT INTO no_such_table VALUES (1)"))

    journal.write(broken)
    await journal.drain()  # written by the worker thread: fails
    assert journal.failures == 1
    journal.close()
    health_body = (await get(state, "/health")).json()
    assert health_body["status"] == "degraded"
    assert health_body["problems"] == {"journal": "writes_failing"}
    assert health_body["journal"]["failures"] == 1
    resp = await get(state, "/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["journal"] == "writes_failing"
    # public: a fixed key, never the database's error text
    assert "no_such_table" not in resp.text and "no_such_table" not in str(health_body)


async def test_database_gone_is_not_ready(sessions):
    state = running_state(sessions)
    watcher = state.extras["config_watcher"]
    watcher.last_read_at = time.monotonic() - health.DB_STALE_AFTER - 1  # reads stopped
    resp = await get(state, "/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["database"] == "unreachable"
    assert (await get(state, "/health")).json()["status"] == "degraded"


async def test_ari_stale_ami_down_and_not_started(sessions):
    state = running_state(sessions)
    state.supervisor.alive_at = time.monotonic() - health.ARI_STALE_AFTER - 1
    state.extras["ami"].synced = False
    state.started_at = None
    checks = (await get(state, "/ready")).json()["checks"]
    assert (checks["ari"], checks["ami"], checks["started"]) == ("stale", "stale", "starting")
    state.extras["ami"].connected = False
    assert (await get(state, "/ready")).json()["checks"]["ami"] == "disconnected"


def test_mailer_stuck_only_counts_while_it_runs():
    snap = health.Snapshot(started=True, mailer_running=True, mailer_pass_age=1.0)
    assert health.ready(health.checks(snap))
    stuck = health.Snapshot(
        started=True, mailer_running=True, mailer_pass_age=health.MAILER_STUCK_AFTER + 1
    )
    assert health.summary(health.checks(stuck))["mailer"] == "stuck"
    assert not health.ready(health.checks(stuck))


def test_journal_failure_long_ago_is_ready_again():
    snap = health.Snapshot(
        started=True, journal_failures=3, journal_failure_age=health.JOURNAL_FAILURE_WINDOW + 1
    )
    assert health.ready(health.checks(snap))


async def test_ami_error_only_in_the_details(sessions):
    from asterisk_cube.web.app import health_payload

    state = running_state(sessions)
    state.extras["ami"].connected = False
    state.extras["ami"].last_error = "login refused for secret=hunter2"
    public = (await get(state, "/health")).json()
    assert public["ami"] == {"connected": False, "synced": True}
    assert public["problems"] == {"ami": "disconnected"}
    assert public["status"] == "ok"  # AMI feeds the panel: /ready says it, not the status
    assert "hunter2" not in str(public)
    detailed = health_payload(state, details=True)["ami"]["last_error"]
    assert detailed.startswith("login refused") and "hunter2" not in detailed
