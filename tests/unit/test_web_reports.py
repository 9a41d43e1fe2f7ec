"""Reports in the browser's server side (GET /reports, /reports/export.csv, /api/reports):
from the generated history with known totals (tests/report_history.py), every figure of
the HTML table, the chart data, the JSON and the CSV export equals the expected figures
computed in Python from what the history decided. Roles (agent 403, anonymous 401/login)
and bad input (400 with one line, no traceback). SQLite, in-process ASGI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import report_history as RH

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import demo_for, make_accounts, make_settings

from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.reports import Reports

PASSWORDS = {"kari": "kari-secret-1", "siri": "siri-secret-1", "adam": "adam-secret-1"}
PERIOD_QS = {"from": RH.FIRST.isoformat(), "to": RH.LAST.isoformat(), "zone": RH.ZONE}

# (report, grouping, the expected figures by key, the key columns of a row)
CASES = {
    "inbound-line": ("inbound", ("line",), lambda h: h.expected_inbound(("line",)), ("line",)),
    "inbound-day": ("inbound", ("day",), lambda h: h.expected_inbound(("day",)), ("day",)),
    "inbound-week-line": (
        "inbound",
        ("week", "line"),
        lambda h: h.expected_inbound(("week", "line")),
        ("week", "line"),
    ),
    "outbound-campaign": (
        "outbound",
        ("campaign",),
        lambda h: h.expected_outbound(("campaign",)),
        ("campaign",),
    ),
    "outbound-day": ("outbound", ("day",), lambda h: h.expected_outbound(("day",)), ("day",)),
    "outcomes": (
        "outcomes",
        ("campaign", "category", "topic"),
        lambda h: h.expected_enquiries(("campaign", "category", "topic"), direction="outbound"),
        ("campaign", "category", "topic"),
    ),
    "agents": (
        "agents",
        ("day", "agent"),
        lambda h: h.expected_agent_states(("day", "agent")),
        ("day", "agent", "state", "pause_reason"),
    ),
    "enquiries": (
        "enquiries",
        ("category", "topic"),
        lambda h: h.expected_enquiries(("category", "topic")),
        ("category", "topic"),
    ),
    "enquiries-agent": (
        "enquiries",
        ("week", "agent"),
        lambda h: h.expected_enquiries(("week", "agent")),
        ("week", "agent"),
    ),
}


def plain(value):
    return value.isoformat() if isinstance(value, dt.date) else value


def text(value) -> str:
    """A figure as the table and the CSV write it."""
    value = plain(value)
    return "" if value is None else str(value)


def expected_rows(history, case) -> dict[tuple, dict]:
    _kind, _group, expect, _keys = CASES[case]
    return {
        tuple(plain(k) for k in key): {c: plain(v) for c, v in row.items()}
        for key, row in expect(history).items()
    }


def keyed(rows, key_cols) -> dict[tuple, dict]:
    out = {}
    for row in rows:
        key = RH.report_key(row, key_cols)
        assert key not in out, f"two rows for {key}"
        out[key] = row
    return out


class TableParser(HTMLParser):
    """Rows of ``table#report-table`` as {data-col: text}; the chart's JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.in_table = False
        self.rows: list[dict[str, str]] = []
        self.col: str | None = None
        self.in_chart = False
        self.chart_text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "report-table":
            self.in_table = True
        elif self.in_table and tag == "tr":
            self.rows.append({})
        elif self.in_table and tag == "td":
            self.col = a["data-col"]
            self.rows[-1][self.col] = ""
        elif tag == "script" and a.get("id") == "chart-data":
            self.in_chart = True

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = False
        elif tag == "td":
            self.col = None
        elif tag == "script":
            self.in_chart = False

    def handle_data(self, data):
        if self.col is not None:
            self.rows[-1][self.col] += data
        if self.in_chart:
            self.chart_text += data


def parse_page(html: str) -> tuple[list[dict[str, str]], dict]:
    p = TableParser()
    p.feed(html)
    return [r for r in p.rows if r], json.loads(p.chart_text)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-reports")
    sessions, ids = make_accounts(tmp)
    with transaction(sessions) as s:
        history = RH.build_history(s)
    hub = EventHub()
    settings = make_settings(tmp)
    mount = desktop_mount(
        settings, demo_for(hub, ids), hub, sessions, extra_routes=Reports(sessions).routes()
    )
    app = create_app(settings, SimpleNamespace(hub=hub, web=None), extra_routes=[mount])
    return SimpleNamespace(app=app, history=history, sessions=sessions)


@pytest.fixture
async def client(world):
    made = []

    async def make(username: str | None = "siri"):
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://t")
        made.append(c)
        if username:
            r = await c.post(
                "/api/login",
                json={"username": username, "password": PASSWORDS[username]},
                headers={"Accept": "application/json"},
            )
            assert r.status_code == 200, r.text
        return c

    yield make
    for c in made:
        await c.aclose()


def query(kind, group, **extra):
    return {**PERIOD_QS, "report": kind, "group": list(group), **extra}


@pytest.mark.parametrize("case", list(CASES))
async def test_table_chart_json_and_csv_match_the_history(world, client, case):
    kind, group, _expect, key_cols = CASES[case]
    expected = expected_rows(world.history, case)
    assert expected, "the history must give rows"
    c = await client("siri")
    params = query(kind, group)

    # JSON: every figure of every row
    r = await c.get("/api/reports", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    got = keyed(body["rows"], key_cols)
    assert set(got) == set(expected)
    for key, row in expected.items():
        assert got[key] == row, key

    # CSV: the same rows and every figure, as text
    r = await c.get("/reports/export.csv", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    reader = csv.DictReader(io.StringIO(r.text))
    assert reader.fieldnames == body["columns"]
    csv_rows = keyed(list(reader), key_cols)
    text_expected = {tuple(text(k) for k in key): row for key, row in expected.items()}
    assert set(csv_rows) == set(text_expected)
    for key, row in text_expected.items():
        assert csv_rows[key] == {c: text(v) for c, v in row.items()}, key

    # HTML table: every shown cell (ids left out) equals the figure, in the report's order
    r = await c.get("/reports", params=params)
    assert r.status_code == 200, r.text
    assert "text/html" in r.headers["content-type"]
    cells, chart = parse_page(r.text)
    assert len(cells) == len(body["rows"])
    for cell_row, json_row in zip(cells, body["rows"], strict=True):
        key = tuple(text(v) for v in RH.report_key(json_row, key_cols))
        want = text_expected[key]
        assert set(cell_row) == {c for c in want if not c.endswith("_id")}
        for col, value in cell_row.items():
            assert value == text(want[col]), (key, col)

    # chart: one label per row and, per measure, the rows' figures in the same order
    assert chart == body["chart"]
    assert len(chart["labels"]) == len(body["rows"])
    assert chart["datasets"]
    for ds in chart["datasets"]:
        assert ds["data"] == [row[ds["key"]] for row in body["rows"]]


async def test_known_totals_by_hand(world, client):
    """One figure counted from the history's facts directly: inbound offered over the period."""
    c = await client("adam")  # admins may too
    r = await c.get("/api/reports", params=query("inbound", ()))
    rows = r.json()["rows"]
    in_period = [f for f in world.history.inbound if RH.FIRST <= f.day <= RH.LAST]
    assert sum(row["offered"] for row in rows) == len(in_period)
    per_line = {did: sum(f.line == did for f in in_period) for did, _ in RH.LINES}
    assert {row["line"]: row["offered"] for row in rows} == per_line


async def test_filters_and_service_level(world, client):
    c = await client("siri")
    did = RH.LINES[1][0]
    r = await c.get("/api/reports", params=query("inbound", ("day", "line"), line=did, sl="0"))
    assert r.status_code == 200, r.text
    want = world.history.expected_inbound(("day", "line"), sl_ms=0, lines=[did])
    got = keyed(r.json()["rows"], ("day", "line"))
    assert set(got) == {tuple(plain(k) for k in key) for key in want}
    for key, row in want.items():
        assert got[tuple(plain(k) for k in key)] == {c: plain(v) for c, v in row.items()}


async def test_agent_is_refused_and_anonymous_must_log_in(client):
    agent = await client("kari")
    params = query("inbound", ("line",))
    assert (await agent.get("/reports", params=params)).status_code == 403
    assert (await agent.get("/reports/export.csv", params=params)).status_code == 403
    assert (await agent.get("/api/reports", params=params)).status_code == 403
    anon = await client(None)
    r = await anon.get("/reports", params=params)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = await anon.get("/api/reports", params=params)
    assert r.status_code == 401
    r = await anon.get("/reports/export.csv", params=params)
    assert r.status_code == 401


@pytest.mark.parametrize(
    "params, words",
    [
        ({"from": "2026-13-01"}, "from must be a date"),
        ({"to": "yesterday"}, "to must be a date"),
        ({"from": "2026-04-02", "to": "2026-04-01"}, "before"),
        ({"zone": "Mars/Olympus"}, "unknown time zone"),
        ({"report": "payroll"}, "unknown report"),
        ({"report": "outbound", "group": "line"}, "cannot group outbound by 'line'"),
        ({"group": ["day", "week"]}, "at most one of day, week, month"),
        ({"line": "4799999999"}, "no line with DID"),
        ({"report": "agents", "line": "4721000001"}, "has no line filter"),
        ({"sl": "soon"}, "sl must be a number"),
    ],
)
async def test_bad_input_is_400_with_one_line(client, params, words):
    c = await client("siri")
    params = {**PERIOD_QS, **params}
    r = await c.get("/reports/export.csv", params=params)
    assert r.status_code == 400
    assert words in r.text and r.text.count("\n") == 1 and "Traceback" not in r.text
    r = await c.get("/api/reports", params=params)
    assert r.status_code == 400
    assert words in r.json()["message"]
    r = await c.get("/reports", params=params)
    assert r.status_code == 400
    assert 'id="report-error"' in r.text and words.split("'")[0] in r.text
    assert "Traceback" not in r.text


async def test_page_offers_the_reports_and_their_grouping(client):
    c = await client("siri")
    r = await c.get("/reports", params=query("enquiries", ("category", "topic")))
    html = r.text
    for kind in ("inbound", "outbound", "outcomes", "agents", "enquiries"):
        assert f'value="{kind}"' in html
    for key in ("day", "week", "month", "category", "topic", "agent", "line", "campaign"):
        assert f'id="g-{key}"' in html
    assert "/reports/static/vendor/chart.umd.js" in html
    assert 'href="/reports/export.csv?' in html
    r = await c.get("/reports/static/vendor/chart.umd.js")
    assert r.status_code == 200 and "Chart.js v4" in r.text[:200]
