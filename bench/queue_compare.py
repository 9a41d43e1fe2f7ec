"""CPU per inbound call, three systems side by side in one session (issue #19).

    python -m bench.queue_compare                 # 2 rounds x (app_queue, minimal ARI, cube)
    python -m bench.queue_compare --rounds 1 --calls 60
    python -m bench.queue_compare --py-spy        # profile the cube runs (py-spy raw)

One sandbox Asterisk (instance ``bench``, base port 41000, or ``--base-port``), one set of
20 SIPp agent phones (answer after ``--answer-ms``, 1000 by default: "ring 1 s"), one SIPp
caller scenario (hold uniformly ``--hold-min-ms``..``--hold-max-ms`` from the caller's answer,
2300-2700 by default: about 1.5 s of talk after the wait and the ring). ``--calls`` calls
(200) at ``--rate``/s (5) into each system in turn, the systems alternating round by round
so the machine's other load hits all three:

* ``app_queue``: ``Answer()`` + ``Queue(bench-q)`` (strategy leastrecent, the 20 phones as
  static members, ringinuse=no, autofill, music on hold): Asterisk only.
* ``minimal``: ``Stasis(bench-minimal,caller)`` served by ``bench/minimal_ari_queue.py`` in
  its own process (aiohttp, no database, no logging).
* ``cube``: the product's generated dialplan and ``wiring.build_runtime`` in this process,
  as ``bench.inbound_bench --part load --load-mode direct`` runs it (a plain line: no
  wrap-up, like app_queue's wrapuptime = 0; SQLite write-
  behind journal, logging INFO to a file, 20 in-process bench agents that accept every
  offer at once, the loop-lag sampler (every 20 ms: ``--lag-interval``) and the bench's
  timing wrappers).

Differences, on purpose or unavoidable: the product needs an agent to accept an offer
(the bench agents do it at once, in this process, so their CPU is counted to cube); cube's
process also runs the AMI monitor, the FastAGI server (idle) and the web app (idle); the
product's process CPU is ``getrusage(RUSAGE_SELF)`` (all its threads) while the minimal
app's is ``/proc/<pid>/stat``; app_queue has no StasisStart, so no latency column.

Per run: CPU per call of Asterisk (``/proc/<pid>/stat``) and of the app's process over the
run (from the first call to the last channel gone), StasisStart -> originate answered by
Asterisk p50/p99, REST requests per call, and the checks: SIPp saw every call succeed,
every call was bridged to an agent (cube: the inbound bench's row checks), no channel
left. Results: ``results.json`` and ``section.md`` in the work directory.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from asterisk_cube import dialplan as dp
from asterisk_cube import logs
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import PASSWORD, USERNAME, ensure_host_tools
from bench import inbound_bench as ib

DID_APPQ, DID_MIN = "4721000201", "4721000202"
MIN_APP = "bench-minimal"

BASELINE_DIALPLAN = f"""
; bench/queue_compare.py: the two baselines (merged into the carrier's context)
[cube-inbound]
exten => {DID_APPQ},1,Answer()
 same => n,Queue(bench-q)
 same => n,Hangup()
exten => {DID_MIN},1,Stasis({MIN_APP},caller)
 same => n,Hangup()
"""


def queues_conf(agents: int) -> str:
    members = "".join(f"member => PJSIP/agent{n:02d}\n" for n in range(1, agents + 1))
    return (
        "[general]\npersistentmembers = no\n\n"
        "[bench-q]\nstrategy = leastrecent\ntimeout = 15\nretry = 1\nwrapuptime = 0\n"
        "ringinuse = no\nautofill = yes\nmusicclass = default\njoinempty = yes\n"
        "leavewhenempty = no\nannounce-frequency = 0\nperiodic-announce-frequency = 0\n"
        "announce-holdtime = no\nreportholdtime = no\n" + members
    )


class Compare(ib.Bench):
    async def setup(self) -> None:
        etc = self.sandbox.host_dir / "etc"
        (etc / "queues.conf").write_text(queues_conf(ib.N_AGENTS))
        self.sandbox.rx("module reload app_queue.so")
        real_install = dp.install

        def install(text: str, settings: Any) -> Any:
            return real_install(text + BASELINE_DIALPLAN, settings)

        dp.install = install  # setup() renders and installs the product's dialplan
        try:
            await super().setup()
        finally:
            dp.install = real_install

    async def _no_channels(self, timeout: float = 60) -> bool:
        try:
            await ib.until(
                lambda: self.sandbox.rx("core show channels count").startswith("0 active"),
                timeout,
                "no channels",
                step=0.2,
            )
        except TimeoutError:
            return False
        return True

    async def external(self, system: str, prefix: str) -> dict[str, Any]:
        """One load run into app_queue or the minimal ARI queue."""
        args = self.args
        pid = self.sandbox.pid()
        assert pid is not None
        app: subprocess.Popen | None = None
        stats_path = self.workdir / f"minimal-{prefix}.json"
        if system == "minimal":
            app = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.minimal_ari_queue",
                    "--url",
                    self.sandbox.ari_url,
                    "--user",
                    USERNAME,
                    "--password",
                    PASSWORD,
                    "--app",
                    MIN_APP,
                    "--agents",
                    ",".join(f"PJSIP/agent{n:02d}" for n in range(1, ib.N_AGENTS + 1)),
                    "--stats",
                    str(stats_path),
                ],
                cwd=ib.REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert app.stdout is not None
            line = await asyncio.to_thread(app.stdout.readline)
            assert line.strip() == "ready", line
        before = self.sandbox.rx("queue show bench-q") if system == "app_queue" else ""
        await asyncio.sleep(2.0)
        did = DID_APPQ if system == "app_queue" else DID_MIN
        ast0, app0 = ib.asterisk_cpu_s(pid), ib.pids_cpu_s([app.pid] if app else [])
        t0 = time.monotonic()
        caller = self._caller(
            f"{system}-{prefix}",
            did,
            2,
            prefix,
            (args.hold_min_ms, args.hold_max_ms),
            calls=args.load_calls,
            rate=args.load_rate,
            limit=args.load_calls,
        ).start()
        timeout = args.load_calls / args.load_rate + args.hold_max_ms / 1000 * 4 + 60
        res = await asyncio.to_thread(caller.wait, timeout)
        clean = await self._no_channels()
        wall = time.monotonic() - t0
        ast = ib.asterisk_cpu_s(pid) - ast0
        app_cpu = ib.pids_cpu_s([app.pid] if app else []) - app0
        out: dict[str, Any] = {"system": system, "wall_s": wall}
        n = args.load_calls
        bridged = 0
        latency: list[float] = []
        requests = None
        if app is not None:
            app.send_signal(signal.SIGTERM)
            await asyncio.to_thread(app.wait, 20)
            stats = json.loads(stats_path.read_text())
            bridged = stats["bridged"]
            latency = stats["stasis_start_to_originate_answered_s"]
            requests = stats["requests"]
        else:
            completed = lambda text: sum(int(x) for x in re.findall(r"C:(\d+)", text))  # noqa: E731
            bridged = completed(self.sandbox.rx("queue show bench-q")) - completed(before)
        out |= {
            "sipp": {"created": res.created, "ok": res.successful, "fail": res.failed},
            "asterisk_ms_per_call": ast * 1000 / n,
            "app_ms_per_call": app_cpu * 1000 / n,
            "bridged": bridged,
            "latency": ib.summary_ms(latency),
            "requests_per_call": None if requests is None else (requests - 3) / n,
            # ok like the cube run's check: every call succeeded and left no channel (a call
            # that reached no agent is missed there and counted in ``bridged`` here)
            "ok": res.created == n and res.failed == 0 and clean,
        }
        return out

    async def compare(self) -> None:
        runs = []
        for r in range(1, self.args.rounds + 1):
            for i, system in enumerate(self.args.systems):
                prefix = f"9{r}{i}0"
                print(f"round {r}: {system}", flush=True)
                if system == "cube":
                    self.marks_latency = {}
                    out = await self._cube_with_latency(prefix)
                else:
                    out = await self.external(system, prefix)
                out["round"] = r
                runs.append(out)
                print("  " + json.dumps({k: v for k, v in out.items() if k != "check"}), flush=True)
        self.results["compare"] = runs

    async def _cube_with_latency(self, prefix: str) -> dict[str, Any]:
        await self.load(prefix)
        load = self.results.pop("load")
        channels = [ch for ch, st in self.marks.t.items() if "start" in st]
        self.marks_latency = ib.summary_ms(self.marks.deltas(channels, "start", "orig_ok"))
        self.results["load"] = load
        return await self._cube_from(load)

    async def _cube_from(self, load: dict[str, Any]) -> dict[str, Any]:
        self.results.pop("load", None)
        cpu = load["cpu"]
        n = load["calls"]
        rest_n = sum(v["n"] for v in load["rest"].values())
        return {
            "system": "cube",
            "wall_s": load["wall_s"],
            "sipp": load["sipp"],
            "asterisk_ms_per_call": cpu["asterisk_ms_per_call"],
            "app_ms_per_call": cpu["process_ms_per_call"],
            "bridged": load["check"]["agent_legs"],
            "latency": self.marks_latency,
            "latency_ws": ib.summary_ms(
                self.marks.deltas(
                    [ch for ch, st in self.marks.t.items() if "ws" in st], "ws", "orig_ok"
                )
            ),
            "requests_per_call": rest_n / n,
            "requests": {k: v["n"] / n for k, v in load["rest"].items()},
            "loop_lag": load["loop_lag"],
            "stages": load["stages"],
            "ok": load["check"]["ok"],
            "check": load["check"],
        }


def _mean(runs: list[dict], system: str, key: str) -> float | None:
    xs = [r[key] for r in runs if r["system"] == system]
    return sum(xs) / len(xs) if xs else None


def markdown(results: dict[str, Any], command: str) -> str:
    mach = results["machine"]
    runs = results.get("compare", [])
    out = [
        f"Date: {results['date']}. Command: `{command}`. Machine: {mach['nproc']} cores, "
        f"{mach['cpu']}, Python {mach['python']}, {mach['asterisk']}; load average "
        f"{mach['loadavg_start']} at the start, {results.get('loadavg_end', '?')} at the end. "
        f"Code: {mach['git']}. Database: {results['database']}.",
        "",
        "| round | system | Asterisk ms/call | app ms/call | total ms/call | "
        "StasisStart→originate answered p50/p99 ms | REST req/call | bridged | ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lat = r["latency"]
        lat_s = f"{ib.fmt(lat['p50'])}/{ib.fmt(lat['p99'])}" if lat.get("n") else "-"
        req = r["requests_per_call"]
        out.append(
            f"| {r['round']} | {r['system']} | {ib.fmt(r['asterisk_ms_per_call'], 1)} | "
            f"{ib.fmt(r['app_ms_per_call'], 1)} | "
            f"{ib.fmt(r['asterisk_ms_per_call'] + r['app_ms_per_call'], 1)} | {lat_s} | "
            f"{'-' if req is None else ib.fmt(req, 1)} | {r['bridged']} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    out.append("")
    for system in ("app_queue", "minimal", "cube"):
        a, p = _mean(runs, system, "asterisk_ms_per_call"), _mean(runs, system, "app_ms_per_call")
        if a is not None and p is not None:
            out.append(f"* mean {system}: Asterisk {a:.1f} + app {p:.1f} = {a + p:.1f} ms/call")
    ma = _mean(runs, "minimal", "app_ms_per_call")
    mt = ma + _mean(runs, "minimal", "asterisk_ms_per_call") if ma is not None else None
    ca = _mean(runs, "cube", "app_ms_per_call")
    if ma and ca is not None and mt:
        ct = ca + _mean(runs, "cube", "asterisk_ms_per_call")
        out.append(f"* cube / minimal: total {ct / mt:.2f}x, app process {ca / ma:.2f}x")
    return "\n".join(out) + "\n"


async def run(args: argparse.Namespace, sandbox: SandboxInstance, workdir: Path) -> dict:
    bench = Compare(args, sandbox, workdir)
    try:
        await bench.setup()
        await bench.staff(ib.DID_LOAD)
        await bench.compare()
    finally:
        await bench.teardown()
    return bench.results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.queue_compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--systems", default="app_queue,minimal,cube")
    ap.add_argument("--calls", dest="load_calls", type=int, default=200)
    ap.add_argument("--rate", dest="load_rate", type=float, default=5.0)
    ap.add_argument("--hold-min-ms", type=int, default=2300)
    ap.add_argument("--hold-max-ms", type=int, default=2700)
    ap.add_argument("--answer-ms", type=int, default=1000, help="agent phones answer after")
    ap.add_argument("--load-mode", default="direct", choices=("desktop", "direct"))
    ap.add_argument(
        "--lag-interval",
        type=float,
        default=0.02,
        help="loop-lag sample interval in the cube runs (s); the inbound bench's 5 ms costs "
        "about 1.5 ms of CPU per call here, counted to cube",
    )
    ap.add_argument("--database-url", default="", help="default: SQLite in the work dir")
    ap.add_argument("--workdir", default="")
    ap.add_argument("--py-spy", action="store_true", help="profile the cube runs")
    ap.add_argument("--base-port", type=int, default=ib.BASE_PORT)
    ap.add_argument("--instance", default=ib.INSTANCE)
    args = ap.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if os.geteuid() != 0:
        print("needs root (the sandbox chroot)", file=sys.stderr)
        return 2
    ensure_host_tools("sipp")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="queue-compare-"))
    if workdir.exists() and args.workdir:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logs.configure("INFO", "kv", stream=open(workdir / "serve.log", "w"))  # noqa: SIM115
    sandbox = SandboxInstance(args.instance, args.base_port)
    if sandbox.is_running():
        sandbox.down()
    print(f"work dir {workdir}; sandbox {args.instance!r} on base port {args.base_port}")
    sandbox.up(reset_dialplan=True)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": ib.machine(sandbox),
        "database": "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite",
        "args": {k: v for k, v in vars(args).items() if k != "py_spy"},
    }
    try:
        results |= asyncio.run(run(args, sandbox, workdir))
    finally:
        results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        sandbox.down()
    command = "python -m bench.queue_compare " + " ".join(argv or sys.argv[1:])
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results, command.strip())
    (workdir / "section.md").write_text(text)
    print(text)
    if args.py_spy:
        for f in sorted(workdir.glob("py-spy-*.txt")):
            prof = ib.profile_summary(f)
            (workdir / f"{f.stem}.json").write_text(json.dumps(prof, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results.get("compare", [])) else 1


if __name__ == "__main__":
    sys.exit(main())
