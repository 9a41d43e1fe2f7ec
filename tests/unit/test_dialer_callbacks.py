"""Scheduled callbacks (F-E6): the scheduled-calls view, scheduling and cancelling, and the
``asterisk-cube callbacks`` CLI."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.cli.callbacks import callbacks as callbacks_group
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialer import callbacks as cb
from asterisk_cube.services import provisioning as p

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "Sales", mode="power", callback_reservation=20)
        ann = p.add_agent(s, "ann").id
        bob = p.add_agent(s, "bob").id
        contacts = []
        for n in range(3):
            row = m.Contact(campaign_id=camp.id, phone=f"+4791000{n:03d}", name=f"c{n}")
            s.add(row)
            s.flush()
            contacts.append(row.id)
    return sessions, camp.id, {"ann": ann, "bob": bob}, contacts


def test_view_states_and_agent_filter(db):
    sessions, _cid, agents, contacts = db
    with transaction(sessions) as s:
        cb.schedule(s, contacts[0], NOW + dt.timedelta(hours=1), agent_id=agents["ann"], now=NOW)
        cb.schedule(s, contacts[1], NOW - dt.timedelta(minutes=5), agent_id=agents["ann"], now=NOW)
        cb.schedule(s, contacts[2], NOW - dt.timedelta(minutes=30), comment="any", now=NOW)
        rows = cb.scheduled_calls(s, now=NOW)
        assert [(r["contact_id"], r["state"], r["for"]) for r in rows] == [
            (contacts[2], "due", "all agents"),
            (contacts[1], "reserved", "ann"),
            (contacts[0], "scheduled", "ann"),
        ]
        assert rows[1]["reserved_until"] == NOW + dt.timedelta(minutes=15)
        # bob sees the one for all agents only
        assert [r["contact_id"] for r in cb.scheduled_calls(s, agent_id=agents["bob"])] == [
            contacts[2]
        ]
        # 20 minutes on, ann's reservation ran out
        later = cb.scheduled_calls(s, now=NOW + dt.timedelta(minutes=20))
        assert [r["state"] for r in later] == ["due", "due", "scheduled"]
        assert s.get(m.Contact, contacts[0]).status == m.ContactStatus.CALLBACK


def test_reschedule_replaces_and_cancel_returns_to_retry(db):
    sessions, _cid, _agents, contacts = db
    with transaction(sessions) as s:
        first = cb.schedule(s, contacts[0], NOW + dt.timedelta(hours=1), now=NOW)
        second = cb.schedule(s, contacts[0], NOW + dt.timedelta(hours=2), now=NOW)
        assert s.get(m.ScheduledCallback, first.id).status == m.CallbackStatus.CANCELLED
        cb.cancel(s, second.id, now=NOW)
        contact = s.get(m.Contact, contacts[0])
        assert contact.status == m.ContactStatus.NOT_ANSWERED and contact.next_attempt_at == NOW
        with pytest.raises(cb.CallbackError):
            cb.cancel(s, second.id)
        with pytest.raises(cb.CallbackError):
            cb.schedule(s, contacts[1], NOW.replace(tzinfo=None))
        s.get(m.Contact, contacts[1]).status = m.ContactStatus.DIALING
        with pytest.raises(cb.CallbackError, match="being dialed"):
            cb.schedule(s, contacts[1], NOW)
        assert cb.scheduled_calls(s, now=NOW) == []
        assert len(cb.scheduled_calls(s, include_done=True, now=NOW)) == 2


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    if "callbacks" not in cli.commands:  # until the lead registers the group
        cli.add_command(callbacks_group)
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    invoke("db", "upgrade")
    return invoke


def test_cli_add_list_cancel(run, tmp_path):
    run("campaign", "add", "Winter", "--mode", "preview", "--timezone", "Europe/Oslo")
    run("agent", "add", "kari")
    csv = tmp_path / "c.csv"
    csv.write_text("phone,name\n91234567,Ola\n")
    run("contacts", "import", "Winter", str(csv))
    out = run(
        "callbacks",
        "add",
        "Winter",
        "91234567",
        "--at",
        "2030-01-02 15:00",
        "--agent",
        "kari",
        "--comment",
        "wants the offer",
    ).output
    assert "for kari" in out and "2030-01-02 15:00" in out
    rows = json.loads(run("callbacks", "list", "--format", "json").output)
    assert [(r["phone"], r["state"], r["for"], r["comment"]) for r in rows] == [
        ("+4791234567", "scheduled", "kari", "wants the offer")
    ]
    assert rows[0]["due_at"].startswith("2030-01-02 14:00")  # stored in UTC
    table = run("callbacks", "list").output
    assert "2030-01-02 15:00" in table and "wants the offer" in table
    run("callbacks", "add", "Winter", "99999999", "--at", "2030-01-02 15:00", ok=False)
    run("callbacks", "add", "Winter", "91234567", "--at", "tomorrow", ok=False)
    run("callbacks", "cancel", str(rows[0]["id"]))
    assert json.loads(run("callbacks", "list", "--format", "json").output) == []
    run("callbacks", "cancel", str(rows[0]["id"]), ok=False)
