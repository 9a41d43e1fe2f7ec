"""Report generation time over a year of history at 5,000 calls/day, on SQLite and PostgreSQL.

    python -m bench.report_bench                       # 365 days x 5,000 calls/day, both backends
    python -m bench.report_bench --days 30             # a quick run
    python -m bench.report_bench --backends sqlite     # SQLite only
    python -m bench.report_bench --help

The history is generated once, day by day (fixed seed), and bulk-loaded into both
databases as it is made: SQLite with ``executemany`` on the raw sqlite3 connection,
PostgreSQL with ``COPY`` (psycopg), into a schema created by the product's Alembic
migrations, so the indexes are the product's. PostgreSQL is a throwaway server
(Debian's binaries, initdb into a temp dir, fsync off — only loading speed depends on
that). After loading, both get ``ANALYZE``.

Per day, with the default 5,000 calls: 70 % inbound calls on 8 lines (waits and
patience exponential; ~10 % abandon, 1 % fail; answered calls get an offer, agent and
caller legs, and an enquiry with one or more topics; abandoned ones a missed call,
80 % processed) and 30 % outbound dial attempts on 4 campaigns (35 % reached with an
enquiry, 1.5 % abandoned, no-answer, machine, failed), plus 40 agents' state changes
(login, offered/busy/wrap-up/ready per handled call, lunch, logout: ~16,000 rows/day).

Every report runs ``--runs`` times (warm cache) and the best time is kept; the
baseline is ``SELECT count(*) FROM calls`` on the same database in the same run, and
each report's time is also given as a multiple of it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import pwd
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import text

from asterisk_cube import reports as R
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade

ZONE = "Europe/Oslo"
N_LINES, N_AGENTS, N_OUTBOUND = 8, 40, 4
CONTACTS_PER_CAMPAIGN = 50_000
REASONS = ["Billing", "Support", "Order", "Delivery", "Complaint", "Other"]
PRODUCTS = ["Alpha", "Beta", "Gamma", "Delta"]
RESULTS = ["Sale", "Interested", "Not interested", "Call back"]

# column order of each bulk-loaded table
COLUMNS = {
    "contacts": ("id", "campaign_id", "phone", "extra", "status", "attempts", "created_at"),
    "calls": (
        "id",
        "direction",
        "kind",
        "state",
        "line_id",
        "campaign_id",
        "contact_id",
        "agent_id",
        "caller_number",
        "dialed_number",
        "line_priority",
        "started_at",
        "queued_at",
        "answered_at",
        "ended_at",
        "registration_done",
    ),
    "call_legs": (
        "id",
        "call_id",
        "role",
        "endpoint",
        "agent_id",
        "started_at",
        "answered_at",
        "ended_at",
    ),
    "call_offers": ("id", "call_id", "agent_id", "offered_at", "decided_at", "result"),
    "missed_calls": (
        "id",
        "call_id",
        "line_id",
        "caller_number",
        "missed_at",
        "processed_at",
        "processed_by",
    ),
    "contact_attempts": (
        "id",
        "contact_id",
        "campaign_id",
        "call_id",
        "agent_id",
        "started_at",
        "ended_at",
        "result",
    ),
    "enquiries": ("id", "call_id", "agent_id", "line_id", "campaign_id", "comment", "created_at"),
    "enquiry_selections": ("enquiry_id", "topic_id"),
    "agent_state_log": ("id", "agent_id", "at", "from_state", "to_state", "reason"),
}


# ------------------------------------------------------------------- config


def setup_config(sessions) -> dict:
    """Lines, agents, campaigns, categories (ORM; small). Returns the ids."""
    with transaction(sessions) as s:
        outbound = [
            m.Campaign(name=f"Outbound {i + 1}", direction="outbound", mode="predictive")
            for i in range(N_OUTBOUND)
        ]
        hotline = m.Campaign(name="Hotline", direction="inbound")
        s.add_all([*outbound, hotline])
        s.flush()
        lines = [
            m.Line(
                did=f"472100{i:04d}",
                name=f"Line {i + 1}",
                campaign_id=hotline.id if i == N_LINES - 1 else None,
            )
            for i in range(N_LINES)
        ]
        agents = [m.Agent(username=f"agent{i + 1:02d}", name=f"Agent {i + 1}") for i in range(40)]
        s.add_all([*lines, *agents])
        reason = m.EnquiryCategory(name="Reason")
        products = m.EnquiryCategory(name="Products", multi_choice=True)
        results = [m.EnquiryCategory(name="Result", campaign_id=c.id) for c in outbound]
        s.add_all([reason, products, *results])
        s.flush()
        topics = {}
        for cat, names in [(reason, REASONS), (products, PRODUCTS)] + [
            (r, RESULTS) for r in results
        ]:
            topics[cat.id] = [m.EnquiryTopic(category_id=cat.id, name=n) for n in names]
            s.add_all(topics[cat.id])
        s.flush()
        return {
            "lines": [(line.id, line.campaign_id) for line in lines],
            "agents": [a.id for a in agents],
            "outbound": [c.id for c in outbound],
            "reason": [t.id for t in topics[reason.id]],
            "products": [t.id for t in topics[products.id]],
            "results": {
                c.id: [t.id for t in topics[r.id]] for c, r in zip(outbound, results, strict=True)
            },
        }


# ---------------------------------------------------------------- generator


class Clock:
    """Seconds since the first day's UTC midnight -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)."""

    def __init__(self, first: dt.date, days: int):
        self.days = [(first + dt.timedelta(days=i)).isoformat() for i in range(days + 3)]

    def __call__(self, seconds: float) -> str:
        whole = int(seconds)
        day, rem = divmod(whole, 86400)
        ms = int((seconds - whole) * 1000)
        return (
            f"{self.days[day]} {rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}.{ms:03d}000"
        )


class Generator:
    def __init__(self, cfg: dict, first: dt.date, days: int, calls_per_day: int, seed: int = 42):
        self.cfg, self.days, self.cpd = cfg, days, calls_per_day
        self.rnd = random.Random(seed)
        self.ts = Clock(first, days)
        self.ids = dict.fromkeys(COLUMNS, 0)
        self.totals = dict.fromkeys(COLUMNS, 0)

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def contacts(self) -> list[tuple]:
        rows = []
        created = self.ts(0)
        for cid in self.cfg["outbound"]:
            for k in range(CONTACTS_PER_CAMPAIGN):
                rows.append(
                    (
                        self.next_id("contacts"),
                        cid,
                        f"+4740{cid:02d}{k:06d}",
                        "{}",
                        "new",
                        0,
                        created,
                    )
                )
        self.totals["contacts"] = len(rows)
        return rows

    def day(self, d: int) -> dict[str, list[tuple]]:
        rnd, ts, cfg = self.rnd, self.ts, self.cfg
        out: dict[str, list[tuple]] = {t: [] for t in COLUMNS if t != "contacts"}
        calls, legs, offers = out["calls"], out["call_legs"], out["call_offers"]
        missed, attempts = out["missed_calls"], out["contact_attempts"]
        enqs, sels, log = out["enquiries"], out["enquiry_selections"], out["agent_state_log"]
        base = d * 86400.0
        agents = cfg["agents"]
        n_in = round(self.cpd * 0.7)

        def enquiry(call_id, agent, line_id, campaign_id, at, topics):
            eid = self.next_id("enquiries")
            enqs.append((eid, call_id, agent, line_id, campaign_id, "", ts(at)))
            for topic in topics:
                sels.append((eid, topic))

        for _ in range(n_in):
            call_id = self.next_id("calls")
            line_id, campaign_id = cfg["lines"][min(int(rnd.expovariate(0.35)), N_LINES - 1)]
            queued = base + 6 * 3600 + rnd.random() * 13 * 3600  # 07-20 local
            started = queued - 3.2
            wait = min(rnd.expovariate(1 / 25), 900)
            patience = rnd.expovariate(1 / 150)
            caller = f"+479{rnd.randrange(10**7):07d}"
            agent = None
            if rnd.random() < 0.01:
                state, answered, ended = "failed", None, queued + 2
            elif wait > patience:
                state, answered, ended = "missed", None, queued + patience
            else:
                state, agent = "ended", agents[rnd.randrange(N_AGENTS)]
                answered = queued + wait
                ended = answered + rnd.expovariate(1 / 200)
            calls.append(
                (
                    call_id,
                    "inbound",
                    "new_customer" if campaign_id else "service",
                    state,
                    line_id,
                    campaign_id,
                    None,
                    agent,
                    caller,
                    "",
                    0,
                    ts(started),
                    ts(queued),
                    ts(answered) if answered else None,
                    ts(ended),
                    state == "ended",
                )
            )
            legs.append(
                (
                    self.next_id("call_legs"),
                    call_id,
                    "caller",
                    "",
                    None,
                    ts(started),
                    None,
                    ts(ended),
                )
            )
            if answered:
                if rnd.random() < 0.1:
                    other = agents[rnd.randrange(N_AGENTS)]
                    t = ts(queued + 0.5)
                    offers.append((self.next_id("call_offers"), call_id, other, t, t, "timeout"))
                offers.append(
                    (
                        self.next_id("call_offers"),
                        call_id,
                        agent,
                        ts(answered - 2),
                        ts(answered),
                        "accepted",
                    )
                )
                legs.append(
                    (
                        self.next_id("call_legs"),
                        call_id,
                        "agent",
                        "PJSIP/agent",
                        agent,
                        ts(answered - 2),
                        ts(answered),
                        ts(ended),
                    )
                )
                topics = [cfg["reason"][min(int(rnd.expovariate(0.6)), len(REASONS) - 1)]]
                if rnd.random() < 0.3:
                    topics += rnd.sample(cfg["products"], rnd.choice((1, 1, 2)))
                enquiry(call_id, agent, line_id, campaign_id, ended + 10, topics)
            elif state == "missed":
                processed = rnd.random() < 0.8
                missed.append(
                    (
                        self.next_id("missed_calls"),
                        call_id,
                        line_id,
                        caller,
                        ts(ended),
                        ts(ended + 1800) if processed else None,
                        agents[rnd.randrange(N_AGENTS)] if processed else None,
                    )
                )

        for _ in range(self.cpd - n_in):
            call_id = self.next_id("calls")
            campaign_id = cfg["outbound"][rnd.randrange(N_OUTBOUND)]
            contact_id = (
                (campaign_id - cfg["outbound"][0]) * CONTACTS_PER_CAMPAIGN
                + rnd.randrange(CONTACTS_PER_CAMPAIGN)
                + 1
            )
            started = base + 7 * 3600 + rnd.random() * 11 * 3600
            x = rnd.random()
            agent, answered = None, None
            if x < 0.35:
                result, agent = "ended", agents[rnd.randrange(N_AGENTS)]
                answered = started + rnd.uniform(5, 25)
                ended = answered + rnd.expovariate(1 / 150)
            elif x < 0.365:
                result, ended = "abandoned", started + 20
            elif x < 0.75:
                result, ended = "no_answer", started + 30
            elif x < 0.9:
                result, ended = "machine", started + 18
            else:
                result, ended = "failed", started + 1
            calls.append(
                (
                    call_id,
                    "outbound",
                    "predictive",
                    result,
                    None,
                    campaign_id,
                    contact_id,
                    agent,
                    "",
                    "",
                    0,
                    ts(started),
                    None,
                    ts(answered) if answered else None,
                    ts(ended),
                    bool(agent),
                )
            )
            attempts.append(
                (
                    self.next_id("contact_attempts"),
                    contact_id,
                    campaign_id,
                    call_id,
                    agent,
                    ts(started),
                    ts(ended),
                    result,
                )
            )
            legs.append(
                (
                    self.next_id("call_legs"),
                    call_id,
                    "contact",
                    "",
                    None,
                    ts(started),
                    ts(answered) if answered else None,
                    ts(ended),
                )
            )
            if agent:
                legs.append(
                    (
                        self.next_id("call_legs"),
                        call_id,
                        "agent",
                        "PJSIP/agent",
                        agent,
                        ts(answered),
                        ts(answered),
                        ts(ended),
                    )
                )
                topic = cfg["results"][campaign_id][min(int(rnd.expovariate(0.8)), 3)]
                enquiry(call_id, agent, None, campaign_id, ended + 5, [topic])

        # agent state changes: about four per handled call, plus login, lunch and logout
        per_agent = max(1, round(self.cpd * 0.78 / N_AGENTS))
        for i, agent in enumerate(agents):
            t = base + 6 * 3600 + (i % 8) * 900
            end = t + 8.5 * 3600
            changes = [(t, "logged_out", "ready", "login")]
            state = "ready"
            cycle = 8 * 3600 / per_agent
            lunch_at = t + 4 * 3600
            while t < end:
                t += rnd.expovariate(1 / max(cycle - 260, 5))
                if t >= lunch_at:
                    changes.append((t, state, "paused", "lunch"))
                    t += 1800
                    changes.append((t, "paused", "ready", "make_ready"))
                    lunch_at = float("inf")
                talk = rnd.expovariate(1 / 220)
                changes += [
                    (t, "ready", "offered", "offer"),
                    (t + 5, "offered", "busy", "accept"),
                    (t + 5 + talk, "busy", "wrap_up", "call_ended"),
                    (t + 35 + talk, "wrap_up", "ready", "wrap_up_expired"),
                ]
                t += 35 + talk
            changes.append((t + 60, "ready", "logged_out", "logout"))
            for at, frm, to, why in changes:
                log.append((self.next_id("agent_state_log"), agent, ts(at), frm, to, why))
        for table, rows in out.items():
            self.totals[table] += len(rows)
        return out


# -------------------------------------------------------------------- loaders


class SqliteLoader:
    """Drops the loaded tables' secondary indexes, loads, then recreates them and ANALYZEs."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        tables = ", ".join(f"'{t}'" for t in COLUMNS)
        self.indexes = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({tables})"
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(f"DROP INDEX {name}")

    def load(self, table: str, rows: list[tuple]) -> None:
        cols = COLUMNS[table]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.conn.executemany(sql, rows)

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        for _, sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute("ANALYZE")
        self.conn.commit()
        self.conn.close()


class PostgresLoader:
    """COPY into the tables with their secondary indexes dropped; recreated at the end."""

    def __init__(self, url: str):
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(url)
        self.conn = psycopg.connect(
            host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=False
        )
        self.conn.execute("SET TIME ZONE 'UTC'")  # the naive timestamp strings are UTC
        self.conn.execute("SET maintenance_work_mem = '256MB'")
        # generated rows are consistent: skip the foreign-key triggers while loading
        self.conn.execute("SET session_replication_role = replica")
        self.indexes = self.conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = ANY(%s)"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(COLUMNS),),
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(f"DROP INDEX {name}")
        self.conn.commit()

    def load(self, table: str, rows: list[tuple]) -> None:
        sql = f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        for _, sql in self.indexes:
            self.conn.execute(sql)
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.close()


# ------------------------------------------------------------------ postgres


@contextlib.contextmanager
def throwaway_postgres(workdir: Path) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL server in ``workdir``: yields (SQLAlchemy URL, version)."""
    bin_dir = next(
        (
            Path(f"/usr/lib/postgresql/{v}/bin")
            for v in ("17", "16", "15")
            if Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists()
        ),
        None,
    )
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql")
    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="cube-bench-pg-", dir=workdir))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data, log = tmp / "data", tmp / "server.log"

    def run(*cmd: str) -> str:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {proc.stderr or proc.stdout}")
        return proc.stdout

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "cube", "-A", "trust", "-E", "UTF8")
    options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user="cube", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE cube")
            version = conn.execute("SHOW server_version").fetchone()[0]
        yield f"postgresql+psycopg://cube@127.0.0.1:{port}/cube", version
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------- reports


def report_cases(last: dt.date, days: int) -> list[tuple[str, Callable]]:
    year = R.Period(last - dt.timedelta(days=days - 1), last, ZONE)
    week = R.Period(last - dt.timedelta(days=6), last, ZONE)
    month = R.Period(last - dt.timedelta(days=29), last, ZONE)
    one = R.Period(last, last, ZONE)
    n = f"{days} d"
    now = dt.datetime.now(dt.UTC)
    return [
        (f"inbound by line, {n}", lambda s: R.inbound(s, year, ("line",))),
        (f"inbound by day and line, {n}", lambda s: R.inbound(s, year, ("day", "line"))),
        (f"inbound by week, {n}", lambda s: R.inbound(s, year, ("week",))),
        ("inbound by day and line, last 30 d", lambda s: R.inbound(s, month, ("day", "line"))),
        ("inbound by day and line, last 7 d", lambda s: R.inbound(s, week, ("day", "line"))),
        (f"outbound by campaign, {n}", lambda s: R.outbound(s, year, ("campaign",))),
        (f"outbound by day and campaign, {n}", lambda s: R.outbound(s, year, ("day", "campaign"))),
        (f"outbound outcomes by topic, {n}", lambda s: R.outbound_outcomes(s, year)),
        (
            f"agent states by day and agent, {n}",
            lambda s: R.agent_states(s, year, ("day", "agent"), now=now),
        ),
        (f"agent states by agent, {n}", lambda s: R.agent_states(s, year, ("agent",), now=now)),
        (
            "agent states by day and agent, last 30 d",
            lambda s: R.agent_states(s, month, ("day", "agent"), now=now),
        ),
        (
            "agent states by day and agent, last 1 d",
            lambda s: R.agent_states(s, one, ("day", "agent"), now=now),
        ),
        (f"enquiries by category and topic, {n}", lambda s: R.enquiries(s, year)),
        (f"enquiries top 10 topics, {n}", lambda s: R.enquiries(s, year, ("topic",), top=10)),
        (f"enquiries by month and agent, {n}", lambda s: R.enquiries(s, year, ("month", "agent"))),
        ("enquiries by day and topic, last 7 d", lambda s: R.enquiries(s, week, ("day", "topic"))),
    ]


def time_reports(url: str, cases, runs: int) -> tuple[float, list[tuple[str, float, int]]]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)

    def best(fn) -> tuple[float, object]:
        times, result = [], None
        for _ in range(runs):
            with sessions() as s:
                t0 = time.perf_counter()
                result = fn(s)
                times.append(time.perf_counter() - t0)
        return min(times), result

    baseline, _ = best(lambda s: s.execute(text("SELECT count(*) FROM calls")).scalar())
    out = []
    for name, fn in cases:
        seconds, report = best(fn)
        out.append((name, seconds, len(report.rows)))
        print(
            f"  {name:45s} {seconds:8.3f} s  {seconds / baseline:7.1f} x  {len(report.rows)} rows"
        )
    engine.dispose()
    return baseline, out


# ----------------------------------------------------------------------- main


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    ap.add_argument("--calls-per-day", type=int, default=5000)
    ap.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    ap.add_argument("--runs", type=int, default=2, help="runs per report; the best is kept")
    ap.add_argument("--workdir", default=None, help="where the databases go (default: a temp dir)")
    ap.add_argument(
        "--hold",
        action="store_true",
        help="keep the databases (and the PostgreSQL server) after the timings until Ctrl-C",
    )
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cube-report-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    last = dt.date.today() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=args.days - 1)
    info = machine()
    print(f"history: {args.days} days x {args.calls_per_day} calls/day, {first}..{last}")
    t_start, load_start = time.perf_counter(), os.getloadavg()

    with contextlib.ExitStack() as stack:
        targets: dict[str, str] = {}
        if "sqlite" in backends:
            path = workdir / "cube.db"
            path.unlink(missing_ok=True)
            targets["sqlite"] = f"sqlite:///{path}"
        if "postgres" in backends:
            url, version = stack.enter_context(throwaway_postgres(workdir))
            info["postgresql"] = version
            targets["postgres"] = url
        print(f"machine: {info}, load average {load_start}")
        cfg = None
        for url in targets.values():
            upgrade(url)
            cfg = setup_config(make_sessionmaker(make_engine(url)))
        # the first-day epoch: the generator counts seconds from ``first`` 00:00 UTC
        gen = Generator(cfg, first, args.days, args.calls_per_day)
        loaders = {
            name: SqliteLoader(Path(url.split("///", 1)[1]))
            if name == "sqlite"
            else PostgresLoader(url)
            for name, url in targets.items()
        }
        load_time = dict.fromkeys(loaders, 0.0)
        t_gen = 0.0
        started = time.perf_counter()
        contacts = gen.contacts()
        for name, loader in loaders.items():
            t0 = time.perf_counter()
            loader.load("contacts", contacts)
            loader.commit()
            load_time[name] += time.perf_counter() - t0
        for d in range(args.days):
            t0 = time.perf_counter()
            chunk = gen.day(d)
            t_gen += time.perf_counter() - t0
            for name, loader in loaders.items():
                t0 = time.perf_counter()
                for table in COLUMNS:
                    if table in chunk:
                        loader.load(table, chunk[table])
                loader.commit()
                load_time[name] += time.perf_counter() - t0
            if d % 30 == 29:
                print(f"  day {d + 1}/{args.days}: {time.perf_counter() - started:.0f} s")
        for name, loader in loaders.items():
            t0 = time.perf_counter()
            loader.close()
            load_time[name] += time.perf_counter() - t0
        print(f"rows: {gen.totals}")
        print(f"generate {t_gen:.0f} s, load+analyze {load_time}")

        results = {}
        cases = report_cases(last, args.days)
        for name, url in targets.items():
            print(f"{name}:")
            results[name] = time_reports(url, cases, args.runs)
        if args.hold:
            print(f"holding: {targets}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.signal(signal.SIGTERM, signal.default_int_handler)
                signal.pause()

    print()
    print(f"machine: {info}")
    took = time.perf_counter() - t_start
    print(f"whole run {took:.0f} s, load average {load_start} -> {os.getloadavg()}")
    print(markdown(args, info, gen.totals, results))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def markdown(args, info, totals, results) -> str:
    names = list(results)
    lines = [
        f"History: {args.days} days x {args.calls_per_day:,} calls/day: "
        + ", ".join(f"{t} {n:,}" for t, n in totals.items())
        + " rows.",
        "",
        "| report | " + " | ".join(f"{n} s | {n} x count(*)" for n in names) + " | rows |",
        "|---|" + "---:|---:|" * len(names) + "---:|",
    ]
    base = {n: results[n][0] for n in names}
    lines.append(
        "| baseline `SELECT count(*) FROM calls` | "
        + " | ".join(f"{base[n]:.3f} | 1" for n in names)
        + " | |"
    )
    first = results[names[0]][1]
    for i, (case, _, nrows) in enumerate(first):
        cells = []
        for n in names:
            seconds = results[n][1][i][1]
            cells.append(f"{seconds:.3f} | {seconds / base[n]:.0f}")
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {nrows} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
