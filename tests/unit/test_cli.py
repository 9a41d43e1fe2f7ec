"""The provisioning CLI, including bad input: one-line errors, nothing half-written."""

import json
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from asterisk_cube.cli import cli
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ASTERISK_CUBE_CONFIG", raising=False)
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()

    def invoke(*args, ok=True, input=None):
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    return invoke


def rows(run, *args):
    return json.loads(run(*args, "--format", "json").output)


def test_every_command_has_help():
    runner = CliRunner()

    def walk(command, path):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(cli, [])


def test_provision_lines_agents_campaigns(run):
    run("campaign", "add", "Hotline", "--direction", "inbound")
    run("line", "add", "4721000001", "--name", "Support", "--priority", "5")
    run("line", "add", "4721000002", "--priority", "9", "--campaign", "Hotline")
    run(
        "agent",
        "add",
        "kari",
        "--endpoint",
        "PJSIP/agent01",
        "--skill",
        "sales",
        "--line",
        "4721000001",
        "--password-stdin",
        input="long-enough-pw\n",
    )
    run("agent", "grant", "kari", "4721000002")
    lines = rows(run, "line", "list")
    assert [line["did"] for line in lines] == ["4721000002", "4721000001"]  # priority order
    assert lines[0]["kind"] == "hotline" and lines[1]["kind"] == "service"
    (agent,) = rows(run, "agent", "list")
    assert agent["lines"] == "4721000001,4721000002"
    assert agent["skills"] == "sales"
    run("line", "set", "4721000001", "--priority", "20")
    assert rows(run, "line", "list")[0]["did"] == "4721000001"
    run("agent", "revoke", "kari", "4721000001")
    assert rows(run, "agent", "list")[0]["lines"] == "4721000002"


def test_outbound_campaign_options(run):
    run(
        "campaign",
        "add",
        "Winter",
        "--mode",
        "predictive",
        "--skill",
        "sales",
        "--caller-id",
        "4721000009",
        "--windows",
        "mon-fri 09:00-20:00",
        "--abandon-cap",
        "2.5%",
        "--max-attempts",
        "4",
        "--retry-interval",
        "30",
    )
    (c,) = rows(run, "campaign", "list")
    assert c["mode"] == "predictive" and c["abandon_cap"] == "2.5%"
    assert c["windows"] == "mon-fri 09:00-20:00" and c["max_attempts"] == 4
    run("campaign", "start", "Winter")
    assert rows(run, "campaign", "list")[0]["status"] == "running"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["line", "add", "12ab"], "DID '12ab' must be 2-20 digits"),
        (["line", "set", "999", "--priority", "1"], "no line with DID '999'"),
        (["line", "add", "4721", "--campaign", "nope"], "no campaign named 'nope'"),
        (["agent", "add", "x!"], "username 'x!'"),
        (["agent", "add", "ola", "--password", "short"], "at least 8 characters"),
        (["agent", "add", "ola", "--endpoint", "agent01"], "must look like PJSIP/agent01"),
        (
            ["campaign", "add", "C", "--mode", "power", "--windows", "mon 9-17"],
            "cannot read 'mon 9-17'",
        ),
        (["campaign", "add", "C"], "needs --mode"),
        (
            ["campaign", "add", "C", "--mode", "power", "--abandon-cap", "300%"],
            "between 0 and 100%",
        ),
        (
            ["campaign", "add", "C", "--mode", "power", "--timezone", "Mars/Base"],
            "unknown time zone",
        ),
        (["campaign", "add", "C", "--mode", "power", "--max-attempts", "0"], "at least 1"),
        (["client", "add", "Co", "--handling", "forward"], "needs a first forward target"),
        (["client", "add", "Co", "--recipient", "nobody"], "not an e-mail address"),
        (["client", "add", "Co", "--forward-timeout", "1"], "forward timeout (seconds) must be"),
        (["client", "add", "Co", "--holiday-country", "XX"], "no national holidays"),
        (["enquiry", "add-topic", "Nope", "A"], "no category named 'Nope'"),
    ],
)
def test_bad_input_is_one_line_error(run, args, message):
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1


def test_failed_command_writes_nothing(run):
    run("line", "add", "4721000001")
    # The agent references one good and one unknown line: no agent, no grant.
    run("agent", "add", "ola", "--line", "4721000001", "--line", "999", ok=False)
    assert rows(run, "agent", "list") == []


def test_schema_must_be_migrated(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text("")
    result = CliRunner().invoke(cli, ["line", "list"])
    assert result.exit_code == 1
    assert "run `asterisk-cube db upgrade`" in result.output


def test_bad_config_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "c.toml").write_text("[ami]\nport = 0\n")
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "c.toml"))
    result = CliRunner().invoke(cli, ["line", "list"])
    assert result.exit_code == 1
    assert "configuration: " in result.output and "ami.port" in result.output


CSV = "phone,name,company,city\n+47 912 34 567,Kari,Acme,Oslo\n91234568,Ola,,Bergen\n"


def test_contacts_import_valid_file(run, tmp_path):
    run("campaign", "add", "W", "--mode", "power")
    path = tmp_path / "list.csv"
    path.write_text(CSV)
    out = run("contacts", "import", "W", str(path), "--json").output
    report = json.loads(out)
    assert report["imported"] == 2 and report["rejected"] == []
    contacts = rows(run, "contacts", "list", "W")
    assert [c["phone"] for c in contacts] == ["+4791234567", "+4791234568"]
    assert contacts[0]["company"] == "Acme"


def test_contacts_import_all_or_nothing_then_valid_only(run, tmp_path):
    run("campaign", "add", "W", "--mode", "power")
    path = tmp_path / "bad.csv"
    path.write_text(CSV + "not-a-number,X,,\n91234567,Dup,,\n,Empty,,\n1,2\n")
    result = run("contacts", "import", "W", str(path), ok=False)
    assert result.exit_code == 1
    assert "row 4: phone 'not-a-number' is not a valid number" in result.output
    assert "row 5: phone +4791234567 repeats row 2" in result.output
    assert "row 6: phone is empty" in result.output
    assert "row 7: has 2 fields, the header has 4" in result.output
    assert "nothing imported: 4 of 6 rows rejected" in result.output
    assert rows(run, "contacts", "list", "W") == []
    result = run("contacts", "import", "W", str(path), "--valid-only")
    assert "imported 2 of 6 rows" in result.output
    assert len(rows(run, "contacts", "list", "W")) == 2
    # Importing the same numbers again: they are already open contacts.
    again = run("contacts", "import", "W", str(path), ok=False)
    assert "already an open contact" in again.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the CSV file is empty"),
        ("name,city\nKari,Oslo\n", "no phone column"),
        ("phone\n", "has a header but no rows"),
    ],
)
def test_contacts_import_bad_files(run, tmp_path, content, message):
    run("campaign", "add", "W", "--mode", "power")
    path = tmp_path / "f.csv"
    path.write_text(content)
    result = run("contacts", "import", "W", str(path), ok=False)
    assert message in result.output


def test_contacts_import_missing_file(run, tmp_path):
    run("campaign", "add", "W", "--mode", "power")
    result = run("contacts", "import", "W", str(tmp_path / "absent.csv"), ok=False)
    assert "file not found" in result.output


def test_client_and_enquiry(run):
    run(
        "client",
        "add",
        "Fjord AS",
        "--hours",
        "mon-fri 08:00-16:00",
        "--tone",
        "informal",
        "--recipient",
        "a@b.example",
        "--own-number",
        "4721000100",
    )
    run("client", "special-day", "Fjord AS", "2026-12-24", "--hours", "09:00-12:00")
    run("client", "special-day", "Fjord AS", "2026-12-25")
    (c,) = rows(run, "client", "list")
    assert c["tone"] == "informal" and c["hours"] == "mon-fri 08:00-16:00"
    run("client", "special-day", "Fjord AS", "2026-13-01", ok=False)
    run("enquiry", "add-category", "Mood")
    run("enquiry", "add-topic", "Mood", "Positive", "Negative")
    run("enquiry", "add-topic", "Mood", "Positive", ok=False)
    (cat,) = rows(run, "enquiry", "list")
    assert cat["topics"] == "Positive, Negative"


def test_demo_load_is_idempotent(run):
    assert "demo data loaded" in run("demo", "load").output
    assert "already loaded" in run("demo", "load").output
    assert len(rows(run, "line", "list")) == 4  # three demo lines and the test-call line


# ------------------------------------------------------- numbers as people type them


def test_a_number_series_can_be_a_clients_own_number(run):
    run("client", "add", "Serie AS", "--own-number", "+4723450*", "--own-number", "22 00 00 00")
    result = run("client", "add", "Bad AS", "--own-number", "+47 2345 0ab*", ok=False)
    assert "own number '+47 2345 0ab*' is not a phone number or number series" in result.output
    assert "DID" not in result.output and result.output.count("\n") == 1
    assert [c["name"] for c in rows(run, "client", "list")] == ["Serie AS"]
    engine = make_engine(load_settings().database_url)
    with engine.connect() as conn:
        own = conn.scalar(select(m.Client.own_numbers).where(m.Client.name == "Serie AS"))
    engine.dispose()
    assert own == ["+4723450*", "+4722000000"]  # stored normalised


@pytest.mark.parametrize("raw", ["12ab34", "9123456x", "+47 912 34 567 ext"])
def test_a_contact_number_with_letters_is_refused_not_stripped(run, tmp_path, raw):
    run("campaign", "add", "W", "--mode", "power")
    path = tmp_path / "letters.csv"
    path.write_text(f"phone,name\n{raw},Kari\n91234567,Ola\n")
    result = run("contacts", "import", "W", str(path), ok=False)
    assert f"row 2: phone {raw!r} is not a valid number" in result.output
    assert rows(run, "contacts", "list", "W") == []
    run("contacts", "import", "W", str(path), "--valid-only")
    assert [c["phone"] for c in rows(run, "contacts", "list", "W")] == ["+4791234567"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("4721000001", "+4721000001"), ("+4721000001", "004721000001"), ("21000001", "4721000001")],
)
def test_one_did_in_two_forms_is_one_line(run, first, second):
    run("line", "add", first)
    result = run("line", "add", second, ok=False)
    assert f"line {second} already exists as {first} (the same number)" in result.output
    assert [ln["did"] for ln in rows(run, "line", "list")] == [first]
    run("line", "set", second, "--priority", "7")  # found in either form
    assert rows(run, "line", "list")[0]["priority"] == 7


# ------------------------------------------------------------------ database URL


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """The CLI with an empty config file and no database yet, run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "c.toml"))
    monkeypatch.delenv("ASTERISK_CUBE_DATABASE_URL", raising=False)
    (tmp_path / "c.toml").write_text("")

    def invoke(*args):
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and result.output.count("\n") == 1
        return result.output

    return invoke


@pytest.mark.parametrize("args", [["line", "list"], ["db", "status"], ["client", "list"]])
def test_a_read_only_command_without_a_database_creates_none(bare, tmp_path, args):
    out = bare(*args)
    path = tmp_path / "data" / "cube.db"
    assert f"no database at {path}: run `asterisk-cube db upgrade`" in out
    assert not path.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("args", [["db", "upgrade"], ["line", "list"], ["db", "status"]])
def test_a_relative_sqlite_path_is_refused_naming_it(bare, tmp_path, monkeypatch, args):
    monkeypatch.setenv("ASTERISK_CUBE_DATABASE_URL", "sqlite:///var/lib/asterisk-cube/cube.db")
    out = bare(*args)
    assert "names var/lib/asterisk-cube/cube.db, a path relative to the current directory" in out
    assert "sqlite:////var/lib/asterisk-cube/cube.db" in out
    assert not (tmp_path / "var").exists()


def test_postgresql_without_the_driver_says_which_extra_to_install(bare, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATABASE_URL", "postgresql://cube:s3cret@db.example/cube")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    for args in (["line", "list"], ["db", "upgrade"]):
        out = bare(*args)
        assert "install asterisk-cube[postgres]" in out
        assert "s3cret" not in out


def test_a_callback_for_a_number_with_letters_is_refused(run, tmp_path):
    run("campaign", "add", "W", "--mode", "power")
    path = tmp_path / "one.csv"
    path.write_text("phone,name\n91234567,Kari\n")
    run("contacts", "import", "W", str(path))
    result = run("callbacks", "add", "W", "9123456a", "--at", "2099-01-05 10:00", ok=False)
    assert "phone '9123456a' is not a phone number" in result.output  # not +479123456


def test_serve_without_a_database_creates_none(tmp_path):
    from asterisk_cube.wiring import SchemaOutOfDate, open_database

    (tmp_path / "c.toml").write_text("")
    settings = load_settings(
        tmp_path / "c.toml", env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path / "data")}
    )
    with pytest.raises(SchemaOutOfDate, match=r"no database at .*: run `asterisk-cube db upgrade`"):
        open_database(settings)
    assert not (tmp_path / "data").exists()


def test_a_relative_data_dir_gives_an_absolute_database_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text("")
    settings = load_settings(tmp_path / "c.toml", env={"ASTERISK_CUBE_DATA_DIR": "data"})
    assert settings.database_url == f"sqlite:///{tmp_path}/data/cube.db"
