"""FastAGI entry sessions per second on one process, beside a bare panoramisk handler.

    python -m bench.agi_entry_bench                    # 30 rounds x 3000 sessions per server
    python -m bench.agi_entry_bench --sessions 2000 --rounds 6      # quick
    python -m bench.agi_entry_bench --json out.json --markdown out.md

Three FastAGI servers, each in its own process (one core each at most), measured in the
same run, round-robin, with the same load generator (this process):

* ``bare``: panoramisk's own ``fast_agi.Application`` and handler, with a route that sends
  the one command the entry sends (``EXEC MSet "CUBE_ACTION=queue,..."``) and returns.
  It decides nothing and reads nothing: the ceiling for a panoramisk FastAGI handler.
* ``guarded``: our :class:`asterisk_cube.agi.server.AgiServer` (guarded environment read,
  own reply parser, per-session log line) with the same do-nothing route.
* ``entry``: ``AgiServer`` with the real :class:`asterisk_cube.agi.entry.EntryRoute`:
  client configuration from the warm :class:`EntryConfigCache` (fingerprint query once a
  second), opening hours with Norwegian national holidays, ad-blocking against a client
  list and global lists (``--client-list`` / ``--global-list`` entries), tone, the MSet
  round trip, and every verdict written to ``adblock_verdicts`` by ``VerdictLog``
  (SQLite, batched). Callers (``--repeat-share``, default 0.3): 30 % of the sessions from
  500 recurring callers, 70 % from numbers never seen before; some on the client's list or
  withheld (rejected), the rest allowed (see :class:`Callers`).

The servers log as ``serve`` does (INFO, key=value lines) to files in the work directory,
and run with ``serve``'s process settings (GIL switch interval, startup heap frozen out of
the garbage collector's full collections; see :func:`settle_like_serve`).
The load generator speaks the Asterisk side of FastAGI over loopback: ``--concurrency``
connections at a time, each sends the AGI environment, answers every command with
``200 result=0`` and waits for the server to close; ``--sessions`` sessions per round.
Measured per server and round: sessions/s (wall), the server process's CPU per session
(``/proc/<pid>/task/*/schedstat``, all threads, user and kernel), and the generator's own
CPU: on 2 cores the generator can be the limit, then the CPU per session shows the true
difference between servers.

Entry vs bare is taken per round (the servers take turns within a round, seconds apart, under
about the same load from whatever else runs on the machine) and reported as min / median /
max over the rounds, two ways: the rate ratio and the CPU-per-session ratio (bare's CPU per
session / entry's: the ratio of the rates one saturated core would give). The CPU ratio is
the one to read on a shared machine: a neighbour's burst during one server's turn moves its
wall rate a lot and its CPU per session a little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

VARIANTS = ("bare", "guarded", "entry")
CLIENT_ID = 1
SCRIPT = f"entry?client={CLIENT_ID}&line=1"  # as the generated dialplan calls it
# What EntryRoute sends for an allowed caller inside hours (same length and shape).
MSET = (
    'EXEC MSet "CUBE_ACTION=queue,CUBE_HOURS=open,CUBE_TONE=formal,CUBE_ADBLOCK=allow,'
    "CUBE_ADBLOCK_REASON=no_match,CUBE_NEXT_OPEN=,CUBE_NEXT_OPEN_EPOCH=,CUBE_TZ=Europe/Oslo,"
    'CUBE_PROMPTS=asterisk-cube/nb/formal,CUBE_SAY_TIME=no"'
)


# ------------------------------------------------------------------ servers (child side)


def provision(url: str, client_list: int, global_list: int) -> None:
    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
    from asterisk_cube.services import provisioning as p

    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        client = p.add_client(
            s, "Bench AS", hours="mon-sun 00:00-24:00", adblock=True, holiday_country="NO"
        )
        assert client.id == CLIENT_ID
        rows = [
            {"client_id": CLIENT_ID, "number": f"+479{n:07d}", "kind": "exact"}
            for n in range(0, client_list * 20, 20)
        ]
        rows += [
            {"client_id": None, "number": f"+4780{n:06d}", "kind": "exact"}
            for n in range(global_list)
        ]
        rows += [{"client_id": None, "number": "+4682", "kind": "prefix"}]
        for row in rows:
            row.update(known_advertiser=False, reason="", created_at=m.utcnow())
        s.execute(m.BlocklistEntry.__table__.insert(), rows)


def settle_like_serve() -> None:
    """The process settings ``asterisk-cube serve`` runs with (``wiring.build_runtime``), for
    every server alike: the 1 ms GIL switch interval, and the startup heap frozen out of the
    garbage collector's full collections. (asyncio's streams leave a few objects in
    reference cycles per connection, so under FastAGI load the collector runs all the time;
    unfrozen, each full collection walks everything imported and loaded, ~50 ms in the entry
    server, about every 2000 sessions.)"""
    from asterisk_cube.wiring import GIL_SWITCH_INTERVAL

    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()


async def serve(
    variant: str, port: int, url: str, log_path: str, level: str = "INFO", settle: bool = True
) -> None:
    from asterisk_cube import logs

    with open(log_path, "a", buffering=1 << 16) as log_file:
        logs.configure(level, "kv", stream=log_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        closers = []
        if variant == "bare":
            from panoramisk import fast_agi

            app = fast_agi.Application(loop=loop)

            async def bare(request) -> None:
                await request.send_command(MSET)

            # panoramisk matches the whole agi_network_script, query string included.
            app.add_route(SCRIPT, bare)
            server = await asyncio.start_server(app.handler, "127.0.0.1", port)
            closers.append(server.close)
        else:
            from asterisk_cube.agi.server import AgiServer

            agi = AgiServer("127.0.0.1", port)
            if variant == "guarded":

                async def guarded(session) -> None:
                    await session.command(MSET)

                agi.add_route("entry", guarded)
            else:
                from asterisk_cube.agi.entry import EntryRoute
                from asterisk_cube.agi.entry_config import EntryConfigCache
                from asterisk_cube.agi.verdict_log import VerdictLog
                from asterisk_cube.db.session import make_engine, make_sessionmaker

                sessions = make_sessionmaker(make_engine(url))
                cache = EntryConfigCache(sessions)
                verdicts = VerdictLog(sessions)
                route = EntryRoute(cache, verdicts)
                await cache.get(CLIENT_ID)  # warm, as after the first call
                await cache.global_lists()
                agi.add_route("entry", route.handle)
                closers.append(verdicts.close)
            await agi.start()
            closers.append(agi.close)
        if settle:
            settle_like_serve()
        print("ready", flush=True)
        await stop.wait()
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


# ------------------------------------------------------------------ load generator


def environment(caller: str) -> bytes:
    headers = {
        "agi_network": "yes",
        "agi_network_script": SCRIPT,
        "agi_request": f"agi://127.0.0.1/{SCRIPT}",
        "agi_channel": "PJSIP/carrier-0000abcd",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1763900000.1234",
        "agi_version": "22.10.1",
        "agi_callerid": caller,
        "agi_calleridname": caller,
        "agi_callingpres": "0",
        "agi_dnid": "4721000001",
        "agi_context": "cube-inbound",
        "agi_extension": "4721000001",
        "agi_priority": "4",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


class Callers:
    """Caller environments: ``repeat_share`` of the sessions come from 500 recurring callers
    (their verdicts are memoised after the first call), the rest from numbers never seen
    before (a full phone-number parse each). Of the recurring ones 5 % are on the client's
    blocklist and 2 % withheld; fresh numbers include 1 % on the list."""

    def __init__(self, repeat_share: float, seed: int = 7):
        self.rnd = random.Random(seed)
        self.repeat_share = repeat_share
        self.recurring = []
        for i in range(500):
            roll = self.rnd.random()
            if roll < 0.05:
                number = f"9{self.rnd.randrange(0, 1000) * 20:07d}"  # on the client's list
            elif roll < 0.07:
                number = "anonymous"
            else:
                number = f"4{i:07d}"
            self.recurring.append(environment(number))
        self.fresh = 0

    def next(self) -> bytes:
        if self.rnd.random() < self.repeat_share:
            return self.rnd.choice(self.recurring)
        self.fresh += 1
        if self.fresh % 100 == 0:
            return environment(f"9{self.rnd.randrange(0, 1000) * 20:07d}")
        return environment(f"+47{40_000_000 + self.fresh}")


async def one_session(port: int, env: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    commands = 0
    try:
        writer.write(env)
        while True:
            line = await reader.readline()
            if not line:
                break
            commands += 1
            writer.write(b"200 result=0\n")
    finally:
        writer.close()
    return commands


async def load(port: int, sessions: int, concurrency: int, envs: Callers) -> dict:
    done = 0
    failed = 0
    commands = 0
    next_index = 0

    async def worker() -> None:
        nonlocal done, failed, commands, next_index
        while next_index < sessions:
            env = envs.next()
            next_index += 1
            try:
                count = await one_session(port, env)
                commands += count
                done += 1
            except OSError:
                failed += 1

    started = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    gen_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "done": done,
        "failed": failed,
        "commands": commands,
        "wall": wall,
        "generator_cpu": gen_cpu,
    }


def proc_cpu(pid: int) -> float:
    """CPU time of a process in seconds, user and kernel, all its threads (the verdict
    writer's too). From the scheduler's nanosecond counters: ``/proc/<pid>/stat`` counts in
    10 ms ticks, 3 us a session over a 3000-session round, too coarse for a ratio per round.
    (A thread that ended takes its time with it; the servers' threads live to the end.)"""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    variant: str
    port: int
    proc: subprocess.Popen
    rounds: list[dict] = field(default_factory=list)


def start_server(variant: str, url: str, workdir: Path, level: str, settle: bool) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.agi_entry_bench",
            "--serve",
            variant,
            "--port",
            str(port),
            "--database-url",
            url,
            "--log",
            str(workdir / f"{variant}.log"),
            "--log-level",
            level,
            *([] if settle else ["--python-defaults"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"{variant} server did not start: {line!r}")
    return Server(variant, port, proc)


def summarize(server: Server) -> dict:
    rates = [r["sessions"] / r["wall"] for r in server.rounds]
    cpu_us = [r["server_cpu"] / r["sessions"] * 1e6 for r in server.rounds]
    gen_us = [r["generator_cpu"] / r["sessions"] * 1e6 for r in server.rounds]
    return {
        "variant": server.variant,
        "rounds": len(server.rounds),
        "sessions_per_round": server.rounds[0]["sessions"],
        "rate_median": statistics.median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "server_cpu_us_per_session": statistics.median(cpu_us),
        "server_cpu_us_min": min(cpu_us),
        "server_cpu_us_max": max(cpu_us),
        "server_cpu_share": statistics.median(r["server_cpu"] / r["wall"] for r in server.rounds),
        "generator_cpu_us_per_session": statistics.median(gen_us),
        "commands_per_session": server.rounds[0]["commands"] / server.rounds[0]["sessions"],
        "failed": sum(r["failed"] for r in server.rounds),
    }


def ratios(other: Server, bare: Server) -> dict:
    """``other`` vs ``bare`` round by round (turns in one round are seconds apart): rate ratio and
    CPU-per-session ratio (bare's CPU per session / other's), min / median / max."""
    rate = [
        (o["sessions"] / o["wall"]) / (b["sessions"] / b["wall"])
        for o, b in zip(other.rounds, bare.rounds, strict=True)
    ]
    cpu = [
        (b["server_cpu"] / b["sessions"]) / (o["server_cpu"] / o["sessions"])
        for o, b in zip(other.rounds, bare.rounds, strict=True)
    ]

    def spread(values: list[float]) -> dict:
        return {
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
            "rounds": values,
        }

    return {"rate": spread(rate), "cpu": spread(cpu)}


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="agi-entry-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    provision(url, args.client_list, args.global_list)
    envs = Callers(args.repeat_share)
    settle = not args.python_defaults
    servers = [start_server(v, url, workdir, args.log_level, settle) for v in VARIANTS]
    load_before = os.getloadavg()
    try:
        for server in servers:  # warm-up: imports, caches, first connections
            await load(server.port, min(2000, args.sessions), args.concurrency, envs)
        for round_no in range(args.rounds):
            order = servers[round_no % len(servers) :] + servers[: round_no % len(servers)]
            for server in order:
                cpu0 = proc_cpu(server.proc.pid)
                result = await load(server.port, args.sessions, args.concurrency, envs)
                result["server_cpu"] = proc_cpu(server.proc.pid) - cpu0
                result["sessions"] = result.pop("done")
                if result["commands"] != result["sessions"] or result["failed"]:
                    raise RuntimeError(f"{server.variant}: not one command per session: {result}")
                server.rounds.append(result)
                print(
                    f"round {round_no + 1} {server.variant:8s} "
                    f"{result['sessions'] / result['wall']:7.0f} sessions/s  "
                    f"server {result['server_cpu'] / result['sessions'] * 1e6:5.0f} us/session  "
                    f"generator {result['generator_cpu'] / result['sessions'] * 1e6:5.0f} us",
                    flush=True,
                )
    finally:
        for server in servers:
            server.proc.send_signal(signal.SIGTERM)
        for server in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(10)
            if server.proc.poll() is None:
                server.proc.kill()
    load_after = os.getloadavg()
    results = {s.variant: summarize(s) for s in servers}
    by_name = {s.variant: s for s in servers}
    vs_bare = {v: ratios(by_name[v], by_name["bare"]) for v in VARIANTS if v != "bare"}
    verdicts = count_verdicts(url)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "command": "python -m bench.agi_entry_bench " + " ".join(sys.argv[1:]),
        "concurrency": args.concurrency,
        "repeat_share": args.repeat_share,
        "log_level": args.log_level,
        "serve_settings": settle,
        "client_list": args.client_list,
        "global_list": args.global_list,
        "load_average": {"before": load_before, "after": load_after},
        "results": results,
        "vs_bare": vs_bare,
        "entry_vs_bare_rate": vs_bare["entry"]["rate"]["median"],
        "entry_vs_bare_cpu": vs_bare["entry"]["cpu"]["median"],
        "verdict_rows": verdicts,
        "workdir": str(workdir),
    }


def count_verdicts(url: str) -> int:
    from sqlalchemy import func, select

    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import make_engine

    with make_engine(url).connect() as conn:
        return conn.execute(select(func.count()).select_from(m.AdblockVerdict)).scalar_one()


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def markdown(report: dict) -> str:
    r = report["results"]
    vs = report["vs_bare"]
    before, after = report["load_average"]["before"][0], report["load_average"]["after"][0]
    lines = [
        f"{report['date']}, {report['machine']}.",
        f"Command: `{report['command']}`",
        "",
        "FastAGI sessions on one server process, driven over loopback by a Python load",
        "generator speaking the Asterisk side of the protocol "
        f"({report['concurrency']} concurrent connections,",
        f"{r['entry']['sessions_per_round']} sessions per round, "
        f"{r['entry']['rounds']} rounds per server, servers interleaved round-robin in one run;",
        f"load average {before:.1f} before, {after:.1f} after).",
        "Each session: AGI environment in, one command (`EXEC MSet` of the `CUBE_*` variables),",
        f"reply, close. Servers log at {report['log_level']} (`serve`'s default is INFO)"
        + (
            ", with serve's GC and GIL settings."
            if report["serve_settings"]
            else ", with Python's GC and GIL defaults."
        ),
        "",
        "| server | sessions/s (median, min-max) | server CPU per session (median, min-max) |"
        " vs bare, by CPU per session (median, min-max over rounds) |"
        " vs bare, by rate (median, min-max) |",
        "|---|---|---|---|---|",
    ]
    names = {
        "bare": "bare panoramisk handler (same command, no decision)",
        "guarded": "our AgiServer, same do-nothing route",
        "entry": "**our AgiServer + EntryRoute** (cached config)",
    }

    def pct(spread: dict) -> str:
        return f"{spread['median']:.0%} ({spread['min']:.0%}-{spread['max']:.0%})"

    for variant in VARIANTS:
        x = r[variant]
        cpu = pct(vs[variant]["cpu"]) if variant in vs else "100%"
        rate = pct(vs[variant]["rate"]) if variant in vs else "100%"
        lines.append(
            f"| {names[variant]} | {x['rate_median']:.0f} ({x['rate_min']:.0f}-"
            f"{x['rate_max']:.0f}) | {x['server_cpu_us_per_session']:.0f} us "
            f"({x['server_cpu_us_min']:.0f}-{x['server_cpu_us_max']:.0f}) | {cpu} | {rate} |"
        )
    entry = vs["entry"]
    lines += [
        "",
        f"Entry vs bare (target >= 80%): **{entry['cpu']['median']:.0%} by CPU per session** "
        f"(rounds: min {entry['cpu']['min']:.0%}, median {entry['cpu']['median']:.0%}); "
        f"by rate {entry['rate']['median']:.0%} (min {entry['rate']['min']:.0%}).",
        f"The entry's work per call: hours (weekly + Norwegian holidays), ad-block against "
        f"{report['client_list']} client and {report['global_list']} global list entries,",
        f"tone/prompts, and {report['verdict_rows']} ad-block verdicts written to SQLite in "
        f"batches during the run. Callers: {report['repeat_share']:.0%} of the sessions from "
        "500 recurring callers, the rest from numbers never seen before. The generator used "
        f"{r['entry']['generator_cpu_us_per_session']:.0f} us CPU per session itself.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per round")
    parser.add_argument(
        "--rounds",
        type=int,
        default=30,
        help="rounds per server: short and many, so that a pair of turns sees the same load "
        "from the rest of the machine (a multiple of 3 rotates the order evenly)",
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--repeat-share",
        type=float,
        default=0.3,
        help="share of sessions from recurring callers (the rest: numbers never seen before)",
    )
    parser.add_argument("--client-list", type=int, default=1000)
    parser.add_argument("--global-list", type=int, default=10000)
    parser.add_argument(
        "--log-level", default="INFO", help="the servers' log level (serve's default: INFO)"
    )
    parser.add_argument(
        "--python-defaults",
        action="store_true",
        help="run the servers with Python's GC and GIL defaults, not serve's process settings",
    )
    parser.add_argument("--workdir")
    parser.add_argument("--database-url")
    parser.add_argument("--json", help="write the report as JSON here")
    parser.add_argument("--markdown", help="write the docs/benchmarks.md section here")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(
            serve(
                args.serve,
                args.port,
                args.database_url,
                args.log,
                args.log_level,
                settle=not args.python_defaults,
            )
        )
        return 0
    report = asyncio.run(run(args))
    text = markdown(report)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
