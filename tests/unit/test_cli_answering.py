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
    typo = run("client", "note", "Acme", "x", "--callback", "9123 45ab", ok=False)
    assert "callback number '9123 45ab' is not a phone number" in error_line(typo)
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


# --- exceptions (F-S3) -----------------------------------------------------------------


def test_exceptions(run):
    run("client", "exception", "add", "Acme", "Closed for stocktaking", "--until", "2099-01-31")
    run(
        "client",
        "exception",
        "add",
        "Acme",
        "Forward to the duty phone",
        "--from",
        "2099-02-01 08:00",
        "--until",
        "2099-02-01 16:00",
        "--handling",
        "forward",
        "--forward1",
        "+47 912 34 567",
    )
    first, second = rows(run, "client", "exception", "list", "Acme")
    assert first["active"] is True and first["until"] == "2099-02-01 00:00"
    assert (second["from"], second["until"]) == ("2099-02-01 08:00", "2099-02-01 16:00")
    assert (second["handling"], second["targets"], second["active"]) == (
        "forward",
        "+4791234567",
        False,
    )
    for args, message in [
        (("x", "--until", "31.01.2099"), "end '31.01.2099' must be YYYY-MM-DD"),
        (("x", "--until", "2020-01-01"), "already over"),
        (("x", "--from", "2099-02-02", "--until", "2099-02-01 12:00"), "ends before it starts"),
        (("x", "--until", "2099-01-01", "--handling", "forward"), "needs a first forward target"),
        (("x", "--until", "2099-01-01", "--forward1", "123"), "need forward handling"),
        (
            ("x", "--until", "2099-01-01", "--handling", "forward", "--forward1", "hi there"),
            "must be a phone number or a dial string",
        ),
        (("  ", "--until", "2099-01-01"), "instruction is empty"),
    ]:
        result = run("client", "exception", "add", "Acme", *args, ok=False)
        assert message in error_line(result), (args, result.output)
    assert len(rows(run, "client", "exception", "list", "Acme")) == 2
    run("client", "exception", "remove", "Acme", first["id"])
    assert "has no exception 999" in error_line(
        run("client", "exception", "remove", "Acme", 999, ok=False)
    )


# --- employees (F-S4) ------------------------------------------------------------------


def test_employee_add_and_bad_input(run):
    run("client", "employee", "add", "Acme", "Accounting", "--email", "acc@acme.test")
    run(
        "client", "employee", "add", "Acme", "Ola Hansen", "--department", "Sales",
        "--handling", "forward", "--forward1", "PJSIP/agent02", "--forward2", "+4791234567",
    )  # fmt: skip
    listed = rows(run, "client", "employee", "list", "Acme")
    assert [(e["name"], e["handling"]) for e in listed] == [
        ("Accounting", "note"),
        ("Ola Hansen", "forward"),
    ]
    assert listed[1]["targets"] == "PJSIP/agent02,+4791234567"
    dup = run("client", "employee", "add", "Acme", "ola hansen", "--department", "sales", ok=False)
    assert "already has an employee 'ola hansen' in sales" in error_line(dup)
    bad = run("client", "employee", "add", "Acme", "X", "--email", "nope", ok=False)
    assert error_line(bad) == "Error: e-mail 'nope' is not an e-mail address"
    unknown = run("client", "employee", "add", "Nobody", "X", ok=False)
    assert error_line(unknown) == "Error: no client named 'Nobody'"
    run("client", "employee", "remove", "Acme", "Accounting")
    assert len(rows(run, "client", "employee", "list", "Acme")) == 1


EMPLOYEES_OK = """name;department;title;email;handling;target1;target2
Kari Nordmann;Accounting;CFO;kari@acme.test;note;;
Ola Hansen;Sales;Seller;ola@acme.test;forward;+4791234567;PJSIP/agent03
Support;Support;;;forward;22334455;
"""

EMPLOYEES_BAD = """name,department,email,handling,target1
Kari Nordmann,Accounting,kari@acme.test,note,
,Sales,x@acme.test,note,
Per,Sales,not-mail,note,
Per,Sales,per@acme.test,call,
Anne,Sales,anne@acme.test,forward,
Kari Nordmann,Accounting,kari2@acme.test,note,
Lise,Support,lise@acme.test,note
"""


def test_employee_import_all_or_nothing_then_valid_only(run, tmp_path):
    good = tmp_path / "employees.csv"
    good.write_text(EMPLOYEES_OK)
    out = run("client", "employee", "import", "Acme", good)
    assert "imported 3 of 3 rows into Acme" in out.output
    listed = rows(run, "client", "employee", "list", "Acme")
    assert {e["name"]: e["targets"] for e in listed}["Support"] == "22334455"

    bad = tmp_path / "bad.csv"
    bad.write_text(EMPLOYEES_BAD)
    result = run("client", "employee", "import", "Acme", bad, "--replace", ok=False)
    assert "row 3: the employee's name is empty" in result.output
    assert "row 4: e-mail 'not-mail' is not an e-mail address" in result.output
    assert (
        "row 5: employee 'Per' handling must be one of note, forward; got 'call'" in result.output
    )
    assert "row 6: employee 'Anne': forward handling needs a first forward target" in result.output
    assert "row 7: 'Kari Nordmann' repeats row 2" in result.output
    assert "row 8: has 4 fields, the header has 5" in result.output
    assert "nothing imported: 6 of 7 rows rejected" in result.output
    assert len(rows(run, "client", "employee", "list", "Acme")) == 3  # untouched

    report = json.loads(
        run(
            "client", "employee", "import", "Acme", bad, "--replace", "--valid-only", "--json"
        ).output
    )
    assert (report["stored"], report["imported"], report["rows_read"]) == (True, 1, 7)
    assert [e["name"] for e in rows(run, "client", "employee", "list", "Acme")] == ["Kari Nordmann"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the CSV file is empty"),
        ("name,email\n", "the CSV file has a header but no rows"),
        ("email,phone\nx@y.z,1\n", "unknown CSV column 'phone'"),
        ("email\nx@y.z\n", "the CSV header has no 'name' column"),
        ("name,navn\na,b\n", "the CSV header names 'name' twice"),
    ],
)
def test_employee_import_bad_files(run, tmp_path, content, message):
    path = tmp_path / "e.csv"
    path.write_text(content)
    result = run("client", "employee", "import", "Acme", path, ok=False)
    assert message in error_line(result)


def test_import_of_a_missing_or_binary_file(run, tmp_path):
    result = run("client", "employee", "import", "Acme", tmp_path / "nope.csv", ok=False)
    assert error_line(result) == f"Error: file not found: {tmp_path / 'nope.csv'}"
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00name")
    result = run("client", "blocklist", "import", binary, ok=False)
    assert "is not UTF-8 text" in error_line(result)


# --- FAQ (F-S5) ------------------------------------------------------------------------


def test_faq(run):
    run(
        "client",
        "employee",
        "add",
        "Acme",
        "Ola",
        "--handling",
        "forward",
        "--forward1",
        "22334455",
    )
    run("client", "faq", "add", "Acme", "Opening hours?", "Mon-Fri 8-16.")
    run("client", "faq", "add", "Acme", "Buy something?", "Sales takes it.", "--employee", "Ola")
    listed = rows(run, "client", "faq", "list", "Acme")
    assert [(f["position"], f["employee"]) for f in listed] == [(1, ""), (2, "Ola")]
    no_target = run("client", "faq", "add", "Acme", "Q", "A", "--handling", "forward", ok=False)
    assert "FAQ forward handling needs targets" in error_line(no_target)
    assert "no employee named 'Per'" in error_line(
        run("client", "faq", "add", "Acme", "Q", "A", "--employee", "Per", ok=False)
    )
    assert "answer is empty" in error_line(run("client", "faq", "add", "Acme", "Q", " ", ok=False))


# --- blocklists (F-S6) -----------------------------------------------------------------


def test_blocklist_add_list_remove(run):
    run("client", "blocklist", "add", "+47 800 12 345", "0046 8 123*", "--advertiser")
    run("client", "blocklist", "add", "815 55 000", "--client", "Acme", "--reason", "pest")
    everything = rows(run, "client", "blocklist", "list", "--all")
    assert [(b["list"], b["entry"], b["known_advertiser"]) for b in everything] == [
        ("global", "+4780012345", True),
        ("global", "+468123*", True),
        ("Acme", "+4781555000", False),
    ]
    assert [b["entry"] for b in rows(run, "client", "blocklist", "list", "--client", "Acme")] == [
        "+4781555000"
    ]
    for args, message in [
        (("80012345",), "+4780012345 is already on the global blocklist"),
        (("anonymous",), "is not a number (anonymous callers are blocked with the client's"),
        (("12*34",), "is not a number or prefix"),
        (("+4*",), "'+4*' is not a plausible prefix"),
        (("123",), "'123' is not a plausible number"),
        (("abc123",), "is not a number or prefix"),
        (("+4791234567", "--client", "Nobody"), "no client named 'Nobody'"),
    ]:
        result = run("client", "blocklist", "add", *args, ok=False)
        assert message in error_line(result), (args, result.output)
    run("client", "blocklist", "remove", "0046 8 123*")
    assert "is not on the global blocklist" in error_line(
        run("client", "blocklist", "remove", "0046 8 123*", ok=False)
    )
    assert len(rows(run, "client", "blocklist", "list", "--all")) == 2


BLOCKS_BAD = """number,known_advertiser,reason
+47 800 12 345,yes,telemarketing
+4782*,,
anonymous,,
+47 800 12 345,no,
+4791234567,maybe,
+4781555000,no
12,no,
"""


def test_blocklist_import_all_or_nothing_then_valid_only(run, tmp_path):
    run("client", "blocklist", "add", "+4781555000")
    path = tmp_path / "blocks.csv"
    path.write_text(BLOCKS_BAD.replace("+4781555000,no\n", "+4781555000,no,\n"))
    result = run("client", "blocklist", "import", path, ok=False)
    out = result.output
    assert "row 4: 'anonymous' is not a number" in out
    assert "row 5: +4780012345 repeats row 2" in out
    assert "row 6: known_advertiser must be yes or no, got 'maybe'" in out
    assert "row 7: +4781555000 is already on the list" in out
    assert "row 8: '12' is not a plausible number" in out
    assert "nothing imported: 5 of 7 rows rejected" in out
    assert len(rows(run, "client", "blocklist", "list")) == 1

    result = run("client", "blocklist", "import", path, "--valid-only")
    assert "imported 2 of 7 rows into the global list; 5 rejected" in result.output
    entries = {b["entry"]: b for b in rows(run, "client", "blocklist", "list")}
    assert entries["+4780012345"]["known_advertiser"] is True
    assert entries["+4780012345"]["reason"] == "telemarketing"
    assert entries["+4782*"]["known_advertiser"] is False


def test_client_blocklist_import_uses_the_clients_region(run, tmp_path):
    run("client", "add", "Beograd", "--region", "RS")
    path = tmp_path / "rs.csv"
    path.write_text("number\n011 123 4567\n063*\n")
    assert (
        "imported 2 of 2"
        in run("client", "blocklist", "import", path, "--client", "Beograd", "--advertiser").output
    )
    entries = rows(run, "client", "blocklist", "list", "--client", "Beograd")
    assert [(b["entry"], b["known_advertiser"]) for b in entries] == [
        ("+381111234567", True),
        ("+38163*", True),
    ]
