"""The answering-service CLI (F-S3..F-S6, F-S9): clear one-line errors, nothing half-written."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from asterisk_cube.cli import cli
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 1, result.output
        return result

    invoke("db", "upgrade")
    invoke("client", "add", "Acme", "--own-number", "+4722000000", "--hours", "mon-fri 08:00-16:00")
    return invoke


@pytest.fixture
def db(run):
    return make_sessionmaker(make_engine(load_settings().database_url))


def rows(run, *args):
    return json.loads(run(*args, "--format", "json").output)


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


# --- recipients and notes --------------------------------------------------------------


def test_recipients_and_notes(run, db):
    run("client", "recipient", "Acme", "a@acme.test", "b@acme.test")
    assert "added 0" in run("client", "recipient", "Acme", "a@acme.test").output
    bad = run("client", "recipient", "Acme", "not-an-address", ok=False)
    assert error_line(bad) == "Error: recipient 'not-an-address' is not an e-mail address"
    run("client", "recipient", "Acme", "b@acme.test", "--remove")

    out = run(
        "client", "note", "Acme", "Call me", "--caller-name", "Kari", "--callback", "91234567"
    )
    assert "note 1 stored" in out.output
    own = run("client", "note", "Acme", "x", "--callback", "22 00 00 00", ok=False)
    assert "is Acme's own number" in error_line(own)
    [row] = rows(run, "client", "notes", "--pending")
    assert (row["callback"], row["status"], row["caller"]) == ("+4791234567", "pending", "Kari")
    assert rows(run, "client", "notes", "--failed") == []

    with db() as s, s.begin():
        note = s.scalars(select(m.CallNote)).one()
        note.mail_status = m.MailStatus.FAILED
        note.mail_attempts = 10
        note.mail_error = "SMTP 550: mailbox unavailable"
    [row] = rows(run, "client", "notes", "--failed", "--client", "Acme")
    assert row["error"] == "SMTP 550: mailbox unavailable" and row["attempts"] == 10
    assert "1 note(s) queued" in run("client", "resend-notes").output
    assert rows(run, "client", "notes", "--failed") == []
    assert rows(run, "client", "notes", "--pending")[0]["attempts"] == 0
    missing = run("client", "resend-notes", "99", ok=False)
    assert error_line(missing) == "Error: no note with id 99"
