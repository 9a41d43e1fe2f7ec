"""Isolation benchmark (issue #12): can the web or the network stall a call?

    python -m bench.isolation_bench                 # 60 calls per phase at 2/s
    python -m bench.isolation_bench --calls 20      # a smoke run
    python -m bench.isolation_bench --phases quiet,login

Needs root (the sandbox chroot) and SIPp. Brings up its own sandbox instance
(``--name``/``--base-port``, default ``test-52000`` on 52000, the isolation worktree's) and
runs the product's runtime in this process exactly as ``bench.inbound_bench`` does (its
``Bench``: SQLite, the generated dialplan, ``wiring.build_runtime``, 20 SIPp agent phones
answering after 200 ms, bench agents accepting every offer at once through the desk API).
One agent (``agent20``) gets a password and serves no line: the event-stream attack logs
in as it.

Phases, in order: ``quiet`` (nothing else), then one attack each, run by a separate
process (``bench.attackers``, loopback only, bounded in count and time):

* ``login``: 200 ``POST /api/login`` per second, unknown users, wrong passwords;
* ``slowloris``: 2000 connections holding half a request header (reopened when cut);
* ``agi``: 1000 FastAGI sessions that send their environment and never answer;
* ``sse``: 500 open ``GET /api/events`` streams of a logged-in agent.

In each phase, after the attack has had ``--settle`` seconds: ``--calls`` SIPp calls at
``--rate`` per second (hold 1.5-2.5 s) on a line the agents serve. Measured: StasisStart
→ agent originate (``start->orig``, from ``inbound_bench.instrument``), every call queued
(StasisStart seen) and offered; FastAGI latency from another process (a ``ping`` session
played as Asterisk every 100 ms: connect → environment → command → reply → closed); this
process's RSS (sampled every 250 ms) above the quiet phase's start.

``--rounds N`` runs the whole sequence N times (quiet, attacks, quiet, attacks, ...) and pools
each phase's samples over the rounds, so a stall of this shared machine lands in any phase
alike and p99 is not the second-largest of a handful. Per phase the CPU seconds of this
process (serve's runtime + the bench agents) and of the attacker are reported: on 2 cores
the attacker's own CPU competes with serve, which a remote attacker's would not;
``--attacker-nice N`` runs the attacker (and nothing else) at that niceness to show how
much of a p99 is the attacker's own CPU rather than serve's work (both in docs).

Verdict per attack: every call queued and offered, p99 within 2x the quiet p99 of the same
run, peak RSS growth under 100 MiB. Results: JSON and a markdown section in the work dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from asterisk_cube import logs
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.passwords import hash_password
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import ensure_host_tools
from bench.inbound_bench import (
    DID_PROBE,
    Bench,
    BenchAgents,
    fmt,
    machine,
    summary_ms,
    until,
)

WATCHER_PASSWORD = "watcher-password"
ATTACKS: dict[str, list[str]] = {
    "login": ["login", "--rate", "200", "--count", "400"],
    "slowloris": ["slowloris", "--count", "2000"],
    "agi": ["agi", "--count", "1000"],
    "sse": ["sse", "--count", "500", "--username", "agent20", "--password", WATCHER_PASSWORD],
}
# The same login flood aimed at *another* serve process (its own web app, no calls): what
# the calls would see if the web ran in a process of its own (the "workers" alternative of
# docs/decisions.md) -- only the machine's CPU is shared then, not the event loop.
ATTACKS["login_elsewhere"] = ATTACKS["login"]
PHASES = ("quiet", "login", "slowloris", "agi", "sse", "login_elsewhere")
RSS_LIMIT_MIB = 100
P99_FACTOR = 2.0


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class IsolationBench(Bench):
    async def setup(self) -> None:
        await super().setup()
        # agent20 serves nothing and is the event-stream attacker's login
        self.watcher = self.agent_ids.pop()
        with transaction(self.sessions) as s:
            agent = s.scalar(select(m.Agent).where(m.Agent.id == self.watcher))
            agent.password_hash = hash_password(WATCHER_PASSWORD)
        await self.distributor.choose_lines(self.watcher, [])
        await self.staff(DID_PROBE)
        self.baseline_kib = rss_kib()
        self.results["phases"] = {}

    def _attacker(self, name: str, seconds: float) -> subprocess.Popen | None:
        if name == "quiet":
            return None
        state = self.runtime.state
        port = state.agi.bound_port if name == "agi" else self.settings.web.port
        if name == "login_elsewhere":
            port = self._elsewhere().web_port
        cmd = [sys.executable, "-m", "bench.attackers", *ATTACKS[name], "--port", str(port)]
        cmd += ["--seconds", str(seconds), "--out", str(self.workdir / f"attack-{name}.json")]
        niceness = self.args.attacker_nice
        return subprocess.Popen(
            cmd,
            cwd=Path(__file__).resolve().parent.parent,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )

    def _elsewhere(self):
        """A second serve (no Asterisk: its ARI just retries), started once."""
        if getattr(self, "other", None) is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from isolation_kit import Target

            (self.workdir / "elsewhere").mkdir(exist_ok=True)
            self.other = Target(self.workdir / "elsewhere").start()
        return self.other

    async def teardown(self) -> None:
        if getattr(self, "other", None) is not None:
            self.other.stop()
        await super().teardown()

    def _prober(self, seconds: float, name: str) -> subprocess.Popen:
        port = self.runtime.state.agi.bound_port
        out = self.workdir / f"agiprobe-{name}.json"
        cmd = [sys.executable, "-m", "bench.attackers", "agiprobe", "--port", str(port)]
        cmd += ["--seconds", str(seconds), "--out", str(out)]
        return subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent)

    @staticmethod
    def _finish(proc: subprocess.Popen | None, path: Path) -> dict[str, Any]:
        if proc is None:
            return {}
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_text())
        return {"error": f"no result (exit {proc.returncode})"}

    async def phase(self, name: str) -> dict[str, Any]:
        args = self.args
        seconds = args.settle + args.calls / args.rate + 90  # upper bound; stopped earlier
        attacker = self._attacker(name, seconds)
        cpu_before = os.times()
        await self.staff(DID_PROBE)
        agents = BenchAgents(self.distributor, self.hub, self.agent_ids, args.agent_mode)
        agents.start()
        peak = [rss_kib()]

        async def sample_rss() -> None:
            while True:
                peak[0] = max(peak[0], rss_kib())
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample_rss())
        await asyncio.sleep(args.settle)  # the attack builds up
        prober = self._prober(seconds, name)
        self.marks.t.clear()
        before = set(self.distributor.by_channel)
        calls = self._caller(
            f"calls-{name}",
            DID_PROBE,
            0,
            "9170",
            (1500, 2500),
            calls=args.calls,
            rate=args.rate,
            limit=args.calls,
        ).start()
        res = await asyncio.to_thread(calls.wait, args.calls / args.rate + 90)
        with contextlib.suppress(TimeoutError):
            await until(
                lambda: not any(call.line_id == self.line_ids[DID_PROBE] for call in self._live()),
                30,
                "calls closed",
            )
        probe = self._finish(prober, self.workdir / f"agiprobe-{name}.json")
        attack = self._finish(attacker, self.workdir / f"attack-{name}.json")
        cpu_after = os.times()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await agents.stop()
        channels = [ch for ch, st in self.marks.t.items() if "start" in st and ch not in before]
        offered = [ch for ch in channels if "offered" in self.marks.t[ch]]
        agi_ms = probe.pop("samples_ms", [])
        attack.pop("samples_ms", None)
        return {
            "calls_placed": res.created,
            "sipp_ok": res.successful,
            "sipp_fail": res.failed,
            "queued": len(channels),
            "offered": len(offered),
            "samples": {
                "start->orig": self.marks.deltas(channels, "start", "orig"),
                "start->offered": self.marks.deltas(channels, "start", "offered"),
                "agi_ping": [x / 1000 for x in agi_ms],
            },
            "agi_probe": probe,
            "rss_peak_growth_mib": round((peak[0] - self.baseline_kib) / 1024, 1),
            "cpu_s": {
                "serve": round(
                    sum(cpu_after[:2]) - sum(cpu_before[:2]), 2
                ),  # this process: serve's runtime and the bench agents
                "attacker": attack.pop("cpu_s", 0.0),
            },
            "attack": attack,
            "accepted": agents.accepted,
            "refused": dict(agents.refused),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }

    async def run_phases(self, phases: list[str], rounds: int = 1) -> None:
        raw: dict[str, list[dict[str, Any]]] = {}
        for round_no in range(1, rounds + 1):
            for name in phases:
                print(f"round {round_no}/{rounds} phase {name} ...", flush=True)
                raw.setdefault(name, []).append(await self.phase(name))
                self.results["phases"][name] = out = pooled(raw[name])
                print(
                    f"  {name} (pooled over {len(raw[name])}): queued {out['queued']}/"
                    f"{out['calls_placed']} offered {out['offered']} start->orig p50 "
                    f"{fmt(out['start->orig']['p50'])} p99 {fmt(out['start->orig']['p99'])} ms;"
                    f" agi p99 {fmt(out['agi_ping']['p99'])} ms; rss +"
                    f"{out['rss_peak_growth_mib']} MiB; cpu {out['cpu_s']}",
                    flush=True,
                )
                await asyncio.sleep(2)  # let the attack's leftovers close


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's rounds as one: counts and CPU summed, samples pooled, RSS the peak."""
    out: dict[str, Any] = {"rounds": len(runs)}
    for key in ("calls_placed", "sipp_ok", "sipp_fail", "queued", "offered", "accepted"):
        out[key] = sum(r[key] for r in runs)
    for key in ("start->orig", "start->offered", "agi_ping"):
        out[key] = summary_ms([x for r in runs for x in r["samples"][key]])
    out["rss_peak_growth_mib"] = max(r["rss_peak_growth_mib"] for r in runs)
    out["cpu_s"] = {
        who: round(sum(r["cpu_s"][who] for r in runs), 2) for who in ("serve", "attacker")
    }
    attack: dict[str, Any] = {}
    for r in runs:
        for k, v in r["attack"].items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                attack[k] = round(attack.get(k, 0) + v, 1)
            else:
                attack[k] = v
    out["attack"] = attack
    out["per_round"] = [{k: v for k, v in r.items() if k != "samples"} for r in runs]
    out["loadavg"] = runs[-1]["loadavg"]
    return out


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    phases = results.get("phases", {})
    quiet = phases.get("quiet")
    out = {}
    for name, ph in phases.items():
        if name == "quiet" or quiet is None:
            continue
        q99 = quiet["start->orig"]["p99"]
        qa99 = quiet["agi_ping"]["p99"]
        checks = {
            "all queued and offered": ph["queued"] == ph["calls_placed"] == ph["offered"],
            f"start->orig p99 <= {P99_FACTOR:g}x quiet": ph["start->orig"]["p99"]
            <= P99_FACTOR * q99,
            f"agi p99 <= {P99_FACTOR:g}x quiet": ph["agi_ping"]["p99"] <= P99_FACTOR * qa99,
            f"rss growth < {RSS_LIMIT_MIB} MiB": ph["rss_peak_growth_mib"] < RSS_LIMIT_MIB,
        }
        out[name] = {"ok": all(checks.values()), "checks": checks}
    return out


def markdown(results: dict[str, Any], command: str) -> str:
    mach = results.get("machine", {})
    lines = [
        f"### Isolation benchmark, {results.get('date')} ({command})",
        "",
        f"Machine: {mach.get('cpu', '?')}, {mach.get('nproc', '?')} cores; "
        f"{mach.get('asterisk', '')}; load average at start {mach.get('loadavg_start', '?')}, "
        f"at end {results.get('loadavg_end', '?')}. {results.get('calls')} calls per phase at "
        f"{results.get('rate')}/s, {results.get('rounds', 1)} round(s) pooled, agents in "
        f"`{results.get('agent_mode')}` mode, attacker at nice {results.get('attacker_nice', 0)}.",
        "",
        "| phase | queued / offered / placed | start→orig p50 | p99 | max | "
        "FastAGI ping p50 | p99 | max | RSS peak growth | CPU s serve / attacker | attack |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ph in results.get("phases", {}).items():
        so, ag = ph["start->orig"], ph["agi_ping"]
        attack = {
            k: v
            for k, v in ph.get("attack", {}).items()
            if k not in ("kind", "samples_ms") and not k.startswith("bytes")
        }
        lines.append(
            f"| {name} | {ph['queued']} / {ph['offered']} / {ph['calls_placed']} | "
            f"{fmt(so['p50'])} ms | {fmt(so['p99'])} ms | {fmt(so['max'])} ms | "
            f"{fmt(ag['p50'])} ms | {fmt(ag['p99'])} ms | {fmt(ag['max'])} ms | "
            f"{ph['rss_peak_growth_mib']} MiB | "
            f"{ph['cpu_s']['serve']} / {ph['cpu_s']['attacker']} | "
            + ", ".join(f"{k} {v}" for k, v in attack.items())
            + " |"
        )
    lines += [
        "",
        "Verdicts (target: all calls queued and offered, p99 within 2x quiet, RSS < 100 MiB):",
        "",
    ]
    for name, v in results.get("verdicts", {}).items():
        failed = [k for k, ok in v["checks"].items() if not ok]
        lines.append(f"- {name}: {'OK' if v['ok'] else 'MISSED: ' + '; '.join(failed)}")
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, sandbox: SandboxInstance, workdir: Path) -> dict:
    bench = IsolationBench(args, sandbox, workdir)
    try:
        await bench.setup()
        await bench.run_phases(args.phases, args.rounds)
    finally:
        await bench.teardown()
    return bench.results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.isolation_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--calls", type=int, default=60, help="calls per phase")
    ap.add_argument("--rate", type=float, default=2.0, help="calls per second")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of attack before calls")
    ap.add_argument("--rounds", type=int, default=1, help="run the phases this many times")
    ap.add_argument("--attacker-nice", type=int, default=0, help="niceness of the attacker")
    ap.add_argument("--agent-mode", default="desktop", choices=("desktop", "direct"))
    ap.add_argument("--answer-ms", type=int, default=200, help="agent phones answer after")
    ap.add_argument("--name", default="test-52000", help="sandbox instance")
    ap.add_argument("--base-port", type=int, default=52000)
    ap.add_argument("--workdir", default="")
    ap.add_argument("--keep-sandbox", action="store_true")
    args = ap.parse_args(argv)
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    # what inbound_bench.Bench.setup reads
    args.database_url, args.py_spy = "", False
    if os.geteuid() != 0:
        print("needs root (the sandbox chroot)", file=sys.stderr)
        return 2
    ensure_host_tools("sipp")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="isolation-bench-"))
    if workdir.exists() and args.workdir:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logs.configure("INFO", "kv", stream=open(workdir / "serve.log", "w"))  # noqa: SIM115
    logging.getLogger("asterisk_cube").setLevel(logging.INFO)
    sandbox = SandboxInstance(args.name, args.base_port)
    if sandbox.is_running():
        sandbox.down()
    print(f"work dir {workdir}; sandbox {args.name!r} on base port {args.base_port}", flush=True)
    sandbox.up(reset_dialplan=True)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "calls": args.calls,
        "rate": args.rate,
        "agent_mode": args.agent_mode,
        "rounds": args.rounds,
        "attacker_nice": args.attacker_nice,
    }
    try:
        results["machine"] = machine(sandbox)
        results |= asyncio.run(run(args, sandbox, workdir))
    finally:
        results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        if not args.keep_sandbox:
            sandbox.down()
    results["verdicts"] = verdicts(results)
    command = "python -m bench.isolation_bench" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results, command)
    (workdir / "section.md").write_text(text)
    print(text)
    print(f"results: {workdir / 'results.json'}, {workdir / 'section.md'}")
    return 0 if all(v["ok"] for v in results["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
