"""Issue #12 item 10: every CSV the product writes neutralises cells a spreadsheet would run
as a formula (OWASP: ``= + - @``, tab, CR) with a leading single quote — E.164 phone numbers
(``+4791234567``) included — and the CSV importers drop that quote again, so an export
re-imports cleanly."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.reports.common import Report

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "@SUM(A1:A9)", "-2+3", "+cmd|' /C calc'!A0"]


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")

    def invoke(*args, ok=True):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    return invoke


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_contacts_export_is_neutralised_and_re_imports_cleanly(run, tmp_path):
    run("campaign", "add", "W", "--mode", "power")
    run("campaign", "add", "V", "--mode", "power")
    source = tmp_path / "list.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows(
        [
            ["phone", "name", "company"],
            *([f"9123456{i}", f, "Acme"] for i, f in enumerate(FORMULAS)),
        ]
    )
    source.write_text(buf.getvalue())
    run("contacts", "import", "W", str(source))

    exported = run("contacts", "list", "W", "--format", "csv").output
    header, *rows = cells(exported)
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["name"]] for r in rows] == ["'" + f for f in FORMULAS]
    assert [r[col["phone"]] for r in rows] == [f"'+479123456{i}" for i in range(len(FORMULAS))]
    assert {r[col["company"]] for r in rows} == {"Acme"}  # plain text untouched
    for row in rows:  # no cell a spreadsheet would run
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)

    again = tmp_path / "export.csv"
    again.write_text(exported)
    run("contacts", "import", "V", str(again))
    original = json.loads(run("contacts", "list", "W", "--format", "json").output)
    copied = json.loads(run("contacts", "list", "V", "--format", "json").output)
    assert [(c["phone"], c["name"]) for c in copied] == [(c["phone"], c["name"]) for c in original]
    assert [c["name"] for c in copied] == FORMULAS


def test_report_csv_export_is_neutralised():
    report = Report(
        title="Enquiries",
        columns=["day", "topic", "agent", "calls", "share", "delta"],
        rows=[
            {
                "day": dt.date(2026, 11, 23),
                "topic": "=1+2",
                "agent": "@admin",
                "calls": 3,
                "share": Decimal("-0.5"),
                "delta": -2,
            },
            {"day": None, "topic": "\tTabbed", "agent": "\rCR", "calls": 0, "share": None},
        ],
    )
    header, first, second = cells(report.to_csv())
    assert header == report.columns
    # numbers are data, not formulas: a negative number stays a number
    assert first == ["2026-11-23", "'=1+2", "'@admin", "3", "-0.5", "-2"]
    assert second == ["", "'\tTabbed", "'\rCR", "0", "", ""]


@pytest.mark.parametrize("text", ["=1", "+47", "-x", "@a", "\tt", "\rr", "plain", "", "'quoted"])
def test_the_quote_prefix_round_trips(text):
    from asterisk_cube.core.text import csv_text, safe_cell, unquote_cell

    written = safe_cell(text)
    assert unquote_cell(written) == text
    (row,) = cells(csv_text(["a"], [{"a": text}]))[1:]
    assert unquote_cell(row[0]) == text
