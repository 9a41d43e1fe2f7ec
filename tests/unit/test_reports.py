"""Reports (F-M2, F-E3) against a generated history with known totals, on SQLite (and on
PostgreSQL: tests/postgres/test_reports_postgres.py runs the same tests there).

The expected figures come from ``report_history``: it records what it decided for every
call, attempt, enquiry and state change and aggregates those facts in Python; nothing
expected is computed by the SQL under test. Every figure of every row is compared, in the
report rows and in the CLI's CSV and JSON output.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
import report_history as RH
from click.testing import CliRunner

from asterisk_cube import reports as R
from asterisk_cube.cli import cli
from asterisk_cube.cli.report import report as report_group
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.reports.common import (
    Period,
    ReportError,
    bucket_of,
    local_midnight,
    utc_offsets,
)

if "report" not in cli.commands:  # until the lead registers the group in cli/__init__.py
    cli.add_command(report_group)

PERIOD = Period(RH.FIRST, RH.LAST, RH.ZONE)
AFTER = RH.local_midnight(RH.DAYS[-1]) + dt.timedelta(days=5)  # "now", after everything


# ------------------------------------------------------------------ databases


class Db:
    def __init__(self, url: str):
        self.url = url
        upgrade(url)
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        with transaction(self.sessions) as s:
            self.history = RH.build_history(s)

    def session(self):
        return self.sessions()


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory) -> Db:
    db = Db(f"sqlite:///{tmp_path_factory.mktemp('reports') / 'cube.db'}")
    yield db
    db.engine.dispose()


@pytest.fixture
def db(sqlite_db) -> Db:
    """SQLite here; tests/postgres/test_reports_postgres.py runs these tests on PostgreSQL."""
    return sqlite_db


def by_key(report: R.Report, keys) -> dict:
    out = {}
    for row in report.rows:
        assert set(row) == set(report.columns)
        key = RH.report_key(row, keys)
        assert key not in out, f"two rows for {key}"
        out[key] = row
    return out


def assert_rows(report: R.Report, expected: dict, keys) -> None:
    got = by_key(report, keys)
    assert set(got) == set(expected), (sorted(map(str, got)), sorted(map(str, expected)))
    for key, row in expected.items():
        assert got[key] == row, key
    assert got, "the history must give rows"


# ------------------------------------------------------------------ figures

INBOUND_KEYS = [(), ("line",), ("day",), ("day", "line"), ("week", "line"), ("month",)]


@pytest.mark.parametrize("keys", INBOUND_KEYS, ids=lambda k: "+".join(k) or "total")
def test_inbound_figures(db, keys):
    with db.session() as s:
        report = R.inbound(s, PERIOD, keys)
    assert_rows(report, db.history.expected_inbound(keys), keys)
    periods = [r[keys[0]] for r in report.rows] if keys and keys[0] in ("day", "week") else []
    assert periods == sorted(periods)


@pytest.mark.parametrize("sl_ms", [0, 19_999, 20_000, 20_001, 60_000])
def test_inbound_service_level_threshold(db, sl_ms):
    with db.session() as s:
        report = R.inbound(s, PERIOD, ("line",), service_level_seconds=sl_ms / 1000)
    assert_rows(report, db.history.expected_inbound(("line",), sl_ms=sl_ms), ("line",))


def test_inbound_line_filter(db):
    did = RH.LINES[1][0]
    with db.session() as s:
        report = R.inbound(s, PERIOD, ("day", "line"), lines=[did])
    assert_rows(report, db.history.expected_inbound(("day", "line"), lines=[did]), ("day", "line"))


def test_inbound_hand_counted(db):
    """Figures worked out by hand from the generator's formulas."""
    with db.session() as s:
        (total,) = R.inbound(s, PERIOD, ()).rows
    # days 1..8: line 1 has 10+3d calls, line 2 has 5+d
    assert total["offered"] == sum(15 + 4 * d for d in range(1, 9)) == 264
    # kinds 6,7 abandon, 8 fails; a day with n calls has n//10*3 + extra of those
    per_day = [(10 + 3 * d, 5 + d) for d in range(1, 9)]
    abandoned = sum(sum(1 for i in range(n) if i % 10 in (6, 7)) for p in per_day for n in p)
    failed = sum(sum(1 for i in range(n) if i % 10 == 8) for p in per_day for n in p)
    assert total["abandoned"] == abandoned
    assert total["other"] == failed
    assert total["answered"] == 264 - abandoned - failed
    # the ad-blocked call each day never queued, the manual callbacks are outbound
    assert total["missed"] == abandoned


OUTBOUND_KEYS = [(), ("campaign",), ("day", "campaign"), ("week",), ("month", "campaign")]


@pytest.mark.parametrize("keys", OUTBOUND_KEYS, ids=lambda k: "+".join(k) or "total")
def test_outbound_figures(db, keys):
    with db.session() as s:
        report = R.outbound(s, PERIOD, keys)
    assert_rows(report, db.history.expected_outbound(keys), keys)


def test_outbound_campaign_filter_and_hand_counted(db):
    with db.session() as s:
        (row,) = R.outbound(s, PERIOD, ("campaign",), campaigns=["Spring"]).rows
    n = sum(20 + d for d in range(1, 9))  # 196 attempts
    results = [j % 8 for d in range(1, 9) for j in range(20 + d)]
    assert row["attempts"] == n == 196
    assert row["reached"] == sum(r < 4 for r in results)
    assert row["abandoned"] == results.count(4)
    assert row["abandon_rate"] == round(results.count(4) / sum(r < 5 for r in results), 4)
    assert row["contacts_dialed"] == 7  # seven contacts, dialed again and again


@pytest.mark.parametrize(
    "keys", [("campaign", "category", "topic"), ("day", "campaign", "topic"), ("campaign",)]
)
def test_outbound_outcomes(db, keys):
    with db.session() as s:
        report = R.outbound_outcomes(s, PERIOD, keys)
    expected = db.history.expected_enquiries(keys, direction="outbound")
    assert_rows(report, expected, keys)
    assert {r["campaign"] for r in report.rows} == {"Spring", "Autumn"}  # not the inbound Hotline


ENQUIRY_KEYS = [
    (),
    ("topic",),
    ("category",),
    ("category", "topic"),
    ("day", "topic"),
    ("week", "agent"),
    ("month", "line", "topic"),
    ("campaign", "category"),
    ("agent", "line", "campaign"),
]


@pytest.mark.parametrize("keys", ENQUIRY_KEYS, ids=lambda k: "+".join(k) or "total")
def test_enquiry_figures(db, keys):
    with db.session() as s:
        report = R.enquiries(s, PERIOD, keys)
    assert_rows(report, db.history.expected_enquiries(keys), keys)


def test_enquiry_agent_filter(db):
    keys = ("day", "category")
    with db.session() as s:
        report = R.enquiries(s, PERIOD, keys, agents=["bob"])
    assert_rows(report, db.history.expected_enquiries(keys, agents=["bob"]), keys)


def test_most_common_topics(db):
    with db.session() as s:
        report = R.enquiries(s, PERIOD, ("topic",), top=3)
    expected = db.history.expected_enquiries(("topic",))
    counts = sorted((r["enquiries"] for r in expected.values()), reverse=True)
    assert [r["enquiries"] for r in report.rows] == counts[:3]
    for row in report.rows:
        assert row == expected[RH.report_key(row, ("topic",))]


AGENT_KEYS = [("agent",), ("day", "agent"), ("day",), ("week", "agent"), ("month",)]


@pytest.mark.parametrize("keys", AGENT_KEYS, ids=lambda k: "+".join(k))
def test_agent_state_times(db, keys):
    with db.session() as s:
        report = R.agent_states(s, PERIOD, keys, now=AFTER)
    expected = db.history.expected_agent_states(keys, now=AFTER)
    assert_rows(report, expected, (*keys, "state", "pause_reason"))


def test_agent_state_times_capped_at_now(db):
    now = RH.local_midnight(RH.DAYS[4]) + dt.timedelta(hours=12, minutes=7, seconds=3)
    keys = ("day", "agent")
    with db.session() as s:
        report = R.agent_states(s, PERIOD, keys, now=now, include_logged_out=True)
    expected = db.history.expected_agent_states(keys, now=now, include_logged_out=True)
    assert_rows(report, expected, (*keys, "state", "pause_reason"))
    assert max(r["day"] for r in report.rows) == RH.DAYS[4]


def test_agent_state_times_by_hand(db):
    """Bob's night shift on the DST day (29 March), and Cara's multi-day training pause."""
    with db.session() as s:
        rows = R.agent_states(s, PERIOD, ("day", "agent"), agents=["bob", "cara"], now=AFTER).rows
    bob = {r["state"]: r["seconds"] for r in rows if r["agent"] == "bob" and r["day"].day == 29}
    # 00:00-00:30 busy, wrap-up 10 min, ready 00:40-06:00 and 22:00-23:30, busy 23:30-24:00
    assert bob == {"ready": 19200 + 5400.0, "busy": 3600.0, "wrap_up": 600.0}
    training = {
        r["day"]: r["seconds"] for r in rows if r["agent"] == "cara" and r["state"] == "paused"
    }
    day = dt.date(2026, 3, 27)
    assert training == {
        day: 13 * 3600.0,  # from 11:00
        day + dt.timedelta(days=1): 24 * 3600.0,
        day + dt.timedelta(days=2): 23 * 3600.0,  # the DST day has 23 hours
        day + dt.timedelta(days=3): 14 * 3600.0,  # until 14:00
    }
    assert all(r["pause_reason"] == "training" for r in rows if r["state"] == "paused")


def test_agent_states_without_reasons(db):
    with db.session() as s:
        rows = R.agent_states(s, PERIOD, ("agent",), now=AFTER, by_reason=False).rows
    expected = db.history.expected_agent_states(("agent",), now=AFTER)
    paused = sum(r["seconds"] for r in expected.values() if r["state"] == "paused")
    assert sum(r["seconds"] for r in rows if r["state"] == "paused") == pytest.approx(paused)
    assert {r["pause_reason"] for r in rows} == {None}


def test_empty_period(db):
    quiet = Period(dt.date(2025, 1, 1), dt.date(2025, 1, 31), RH.ZONE)
    with db.session() as s:
        assert R.inbound(s, quiet, ()).rows == []
        assert R.outbound(s, quiet).rows == []
        assert R.enquiries(s, quiet).rows == []
        assert R.agent_states(s, quiet, now=AFTER).rows == []


def test_unknown_filters(db):
    with db.session() as s:
        with pytest.raises(ReportError, match="no line with DID '123'"):
            R.inbound(s, PERIOD, lines=["123"])
        with pytest.raises(ReportError, match="no campaign named 'Nope'"):
            R.outbound(s, PERIOD, campaigns=["Nope"])
        with pytest.raises(ReportError, match="no agent named 'zed'"):
            R.agent_states(s, PERIOD, agents=["zed"])
        with pytest.raises(ReportError, match="cannot group by 'agent'"):
            R.inbound(s, PERIOD, ("agent",))
        with pytest.raises(ReportError, match="at most one of day, week, month"):
            R.enquiries(s, PERIOD, ("day", "week"))


# ------------------------------------------------------------------ CLI output


@pytest.fixture
def run(db, tmp_path, monkeypatch):
    (tmp_path / "cube.toml").write_text("")
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_DATABASE_URL", db.url)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["report", *args], catch_exceptions=False)

    return invoke


PERIOD_ARGS = ("--from", RH.FIRST.isoformat(), "--to", RH.LAST.isoformat(), "--zone", RH.ZONE)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _jsonable(row: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


CLI_CASES = [
    ("inbound", ("day", "line"), lambda h, k: h.expected_inbound(k)),
    ("outbound", ("week", "campaign"), lambda h, k: h.expected_outbound(k)),
    ("enquiries", ("agent", "topic"), lambda h, k: h.expected_enquiries(k)),
    (
        "agents",
        ("day", "agent"),
        lambda h, k: h.expected_agent_states(k, now=dt.datetime.now(dt.UTC)),
    ),
]


@pytest.mark.parametrize("command,keys,expect", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_csv_and_json_match(db, run, command, keys, expect):
    expected = expect(db.history, keys)
    key_of = (*keys, "state", "pause_reason") if command == "agents" else keys
    group = [a for k in keys for a in ("--group-by", k)]

    result = run(command, *PERIOD_ARGS, *group, "--format", "csv")
    assert result.exit_code == 0, result.output
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert len(parsed) == len(expected)
    text_expected = {
        tuple(_text(v) for v in k): {c: _text(v) for c, v in row.items()}
        for k, row in expected.items()
    }
    for row in parsed:
        key = tuple(row[c] for c in _key_columns(row, key_of))
        assert row == text_expected[key]

    result = run(command, *PERIOD_ARGS, *group, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == len(expected)
    json_expected = {tuple(_text(v) for v in k): _jsonable(row) for k, row in expected.items()}
    for row in rows:
        key = tuple(_text(row[c]) for c in _key_columns(row, key_of))
        assert row == json_expected[key]

    result = run(command, *PERIOD_ARGS, *group)
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == len(expected) + 1


def _key_columns(row: dict, keys) -> list[str]:
    keys = list(keys)
    if "topic" in keys and "category" not in keys:
        keys.insert(keys.index("topic"), "category")
    return keys


def test_cli_outcomes(db, run):
    result = run("outbound", *PERIOD_ARGS, "--outcomes", "--format", "json")
    assert result.exit_code == 0, result.output
    keys = ("campaign", "category", "topic")
    expected = db.history.expected_enquiries(keys, direction="outbound")
    assert sorted(map(str, json.loads(result.output))) == sorted(
        str(_jsonable(r)) for r in expected.values()
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ("inbound", "--from", "2026-13-01"),
            "--from must be a date like 2026-11-23; got '2026-13-01'",
        ),
        (("inbound", "--from", "yesterday"), "--from must be a date"),
        (("outbound", "--to", "2026-02-30"), "--to must be a date"),
        (("agents", "--from", "2026-03-05", "--to", "2026-03-01"), "--to (2026-03-01) is before"),
        (("inbound", "--line", "4799999999"), "no line with DID '4799999999'"),
        (("outbound", "--campaign", "Nope"), "no campaign named 'Nope'"),
        (("enquiries", "--campaign", "Nope"), "no campaign named 'Nope'"),
        (("agents", "--agent", "zed"), "no agent named 'zed'"),
        (("inbound", "--zone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("enquiries", "--top", "0"), "--top must be 1 or more"),
        (("inbound", "--group-by", "day", "--group-by", "week"), "at most one of day, week"),
        (("inbound", "--from", "2000-01-01", "--to", "2026-01-01"), "at most 3700 days"),
    ],
)
def test_cli_bad_input(run, args, message):
    result = run(*args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


# ------------------------------------------------------------------ periods


def test_period_bounds_in_zone():
    p = Period(dt.date(2026, 3, 29), dt.date(2026, 3, 29), "Europe/Oslo")
    assert p.start == dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC)
    assert p.end == dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC)  # a 23-hour day
    autumn = Period(dt.date(2026, 10, 25), dt.date(2026, 10, 25), "Europe/Oslo")
    assert autumn.end - autumn.start == dt.timedelta(hours=25)
    # midnight inside a DST gap: the day starts when the gap ends
    assert local_midnight(dt.date(2026, 3, 8), ZoneInfo("America/Havana")) == dt.datetime(
        2026, 3, 8, 5, tzinfo=dt.UTC
    )


def test_utc_offsets_finds_changes_to_the_second():
    p = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31), "Europe/Oslo")
    assert utc_offsets(p.zone, p.start, p.end) == [
        (p.start, 3600),
        (dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC), 7200),
        (dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC), 3600),
    ]
    assert utc_offsets("UTC", p.start, p.end) == [(p.start, 0)]


def test_buckets():
    day = dt.date(2026, 4, 2)  # a Thursday
    assert bucket_of(day, "day") == day
    assert bucket_of(day, "week") == dt.date(2026, 3, 30)
    assert bucket_of(dt.date(2026, 3, 29), "week") == dt.date(2026, 3, 23)  # Sunday
    assert bucket_of(day, "month") == dt.date(2026, 4, 1)


def test_period_validation():
    with pytest.raises(ReportError, match="before"):
        Period(dt.date(2026, 2, 1), dt.date(2026, 1, 1))
    with pytest.raises(ReportError, match="unknown time zone"):
        Period(dt.date(2026, 1, 1), dt.date(2026, 1, 2), "Nowhere/Special")
    with pytest.raises(ReportError, match="--from must be a date"):
        Period.parse("2026-1-1x", "2026-01-02")


@pytest.mark.parametrize("day", [RH.FIRST, RH.DAYS[4], RH.LAST], ids=str)
def test_single_day(db, day):
    """A short period takes the index path on SQLite (see common.in_period)."""
    p = Period(day, day, RH.ZONE)
    h = db.history
    with db.session() as s:
        assert_rows(
            R.inbound(s, p, ("line",)),
            h.expected_inbound(("line",), first=day, last=day),
            ("line",),
        )
        assert_rows(
            R.outbound(s, p, ("campaign",)),
            h.expected_outbound(("campaign",), first=day, last=day),
            ("campaign",),
        )
        assert_rows(
            R.enquiries(s, p, ("topic",)),
            h.expected_enquiries(("topic",), first=day, last=day),
            ("topic",),
        )
        assert_rows(
            R.agent_states(s, p, ("agent",), now=AFTER),
            h.expected_agent_states(("agent",), now=AFTER, first=day, last=day),
            ("agent", "state", "pause_reason"),
        )
