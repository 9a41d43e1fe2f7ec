"""Issue #12 item 9: a line break in a caller's name used to stop all note e-mail for ever
(building the Subject raised, the whole claim rolled back, every pass failed again).

Control characters are refused at every edge (web JSON, CLI, CSV imports, the notes
service), and the mail worker isolates a note whose e-mail cannot be built: it is marked
failed with the reason and the other notes are sent — proven with a REAL SMTP server."""

from __future__ import annotations

import json
import re
import warnings

import pytest
from click.testing import CliRunner
from fakes.answering import add_client
from fakes.web import demo_for, make_accounts, make_settings
from smtpkit import Inbox, smtp_servers
from sqlalchemy import func, select

from asterisk_cube.cli import cli
from asterisk_cube.config import SmtpSettings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.mailer import NoteMailer
from asterisk_cube.services.notes import NoteError, create_note
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BAD_NAMES = ["Kari\r\nBcc: evil@attacker.example", "Kari\nNordmann", "Kari\x00", "Kari\x1b[2J"]


@pytest.fixture
def smtp_server():
    yield from smtp_servers()


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


# --- the mail worker: one bad note does not stop the others -------------------------------


def _legacy_note(s, client_id: int, caller_name: str, message: str) -> int:
    """A note as an older version stored it: straight into the table, no validation."""
    note = m.CallNote(
        client_id=client_id,
        caller_name=caller_name,
        callback_number="",
        message=message,
        mail_status=m.MailStatus.PENDING,
        mail_attempts=0,
    )
    s.add(note)
    s.flush()
    return note.id


async def test_a_bad_note_is_isolated_and_the_rest_are_mailed(sessions, smtp_server):
    with transaction(sessions) as s:
        acme = p.add_client(s, "Acme AS", recipients=["office@acme.test"]).id
        broken = p.add_client(s, "Broken AS", recipients=["ok@broken.test"])
        # a recipient no e-mail header can hold (stored before addresses were checked)
        broken.recipients.append(m.NoteRecipient(email="x@broken.test\r\nBcc: evil@x.test"))
        s.flush()
        newline_name = _legacy_note(s, acme, "Kari\r\nBcc: evil@attacker.example", "first")
        unbuildable = _legacy_note(s, broken.id, "Ola", "second")
        plain = _legacy_note(s, acme, "Per", "third")
    inbox = Inbox()
    port = smtp_server(inbox)
    mailer = NoteMailer(
        sessions, SmtpSettings(host="127.0.0.1", port=port, sender="n@cube.test"), timeout=5
    )

    assert await mailer.process_due() == 3

    # the old note with a line break in the name is mailed, its Subject on one line
    subjects = {msg["X-Asterisk-Cube-Note"]: msg for _rcpt, msg in inbox.messages}
    assert set(subjects) == {str(newline_name), str(plain)}
    first = subjects[str(newline_name)]
    assert first["Subject"] == "Call note for Acme AS: Kari Bcc: evil@attacker.example"
    assert first["Bcc"] is None
    assert all("evil" not in addr for rcpt, _msg in inbox.messages for addr in rcpt)
    with sessions() as s:
        bad = s.get(m.CallNote, unbuildable)
        assert bad.mail_status is m.MailStatus.FAILED  # at once: retrying cannot help
        assert bad.mail_error.startswith("cannot build the e-mail: ")
        assert "\n" not in bad.mail_error
        for note_id in (newline_name, plain):
            assert s.get(m.CallNote, note_id).mail_status is m.MailStatus.SENT
    assert await mailer.process_due() == 0  # nothing left that blocks a later pass


# --- the edges refuse control characters ---------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_notes_service_refuses_a_control_character_in_the_name(sessions, name):
    with transaction(sessions) as s:
        p.add_client(s, "Acme AS", recipients=["office@acme.test"])
    refused = pytest.raises(NoteError, match=r"the caller's name contains a control character")
    with refused, transaction(sessions) as s:
        create_note(s, "Acme AS", "Call me", caller_name=name)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.CallNote)) == 0
    # a message may span lines
    with transaction(sessions) as s:
        create_note(s, "Acme AS", "Line one\nline two\ttabbed", caller_name="Kari")


@pytest.fixture
def desk_env(tmp_path):
    accounts, ids = make_accounts(tmp_path)
    hub = EventHub()
    desk = demo_for(hub, ids)
    client = add_client(accounts, desk)
    desk.agents[ids["kari"]].permitted.append(client.line_id)
    settings = make_settings(tmp_path)
    app = create_app(
        settings, object(), extra_routes=[desktop_mount(settings, desk, hub, accounts)]
    )
    c = TestClient(app)
    resp = c.post("/api/login", json={"username": "kari", "password": "kari-secret-1"})
    c.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    for path, body in (("/api/start", None), ("/api/lines", {"line_ids": [client.line_id]})):
        assert c.post(path, json=body).status_code == 200
    assert c.post("/api/ready").status_code == 200
    call = desk.incoming_call(client.line_id, "+4791234567")
    assert c.post(f"/api/offers/{call}/accept").status_code == 200
    return c, desk, call


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_desk_api_refuses_a_control_character_in_a_one_line_field(desk_env, name):
    c, desk, call = desk_env
    before = desk.snapshot()
    resp = c.post(f"/api/calls/{call}/note", json={"message": "Call me", "caller_name": name})
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == "caller_name"
    resp = c.post(f"/api/calls/{call}/contact/new", json={"name": name, "phone": "91234567"})
    assert resp.status_code == 400 and resp.json()["field"] == "name"
    assert desk.snapshot() == before and desk.notes == []
    # the note's message and an enquiry comment may span lines
    ok = c.post(f"/api/calls/{call}/note", json={"message": "one\r\ntwo\tthree"})
    assert ok.status_code == 200, ok.text


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_cli_refuses_a_control_character_naming_the_argument(run, name):
    result = run("client", "add", name)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: name: contains a control character (U+{ord(next(c for c in name if c < ' ')):04X})"
    ]
    assert run("client", "add", "Acme AS").exit_code == 0
    result = run("client", "note", "Acme AS", "Call me", "--caller-name", name)
    assert result.exit_code == 1 and "caller-name: contains a control character" in result.output
    listed = run("client", "list", "--format", "json")
    assert [c["name"] for c in json.loads(listed.output)] == ["Acme AS"]
    # a note's message may span lines
    assert run("client", "note", "Acme AS", "Line one\nline two").exit_code == 0


@pytest.mark.parametrize("cell", ["Kari\x00", '"Kari\nNordmann"', "Kari\x1b"])
def test_csv_imports_reject_a_row_with_a_control_character(run, tmp_path, cell):
    assert run("campaign", "add", "W", "--mode", "power").exit_code == 0
    path = tmp_path / "list.csv"
    path.write_text(f"phone,name\n91234567,{cell}\n91234568,Ola\n")
    result = run("contacts", "import", "W", str(path))
    assert result.exit_code == 1
    # (the row's number is the line it ends on: a quoted line break spans two)
    assert re.search(r"row [23]: name contains a control character", result.output)
    assert json.loads(run("contacts", "list", "W", "--format", "json").output) == []
    assert run("client", "add", "Acme AS").exit_code == 0
    path.write_text(f"name,department\n{cell},Sales\nOla,Sales\n")
    result = run("client", "employee", "import", "Acme AS", str(path))
    assert result.exit_code == 1
    assert re.search(r"row [23]: name contains a control character", result.output)
