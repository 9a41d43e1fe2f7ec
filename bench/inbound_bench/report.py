"""The inbound bench's results: py-spy profile summary, machine, markdown section."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from asterisk_cube.sandbox import SandboxInstance
from bench.inbound_bench.common import (
    REPO,
    fmt,
)

# ---------------------------------------------------------------------------- report


_GENERIC = ("asyncio/", "<frozen runpy>", "selectors.py", "(bench/inbound_bench/", "(<string>)")


def _frame_name(frame: str, line: bool = False) -> str:
    """``func (path/to/file.py:123)`` -> ``func (to/file.py)`` (or ``...py:123``)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if not line:
        where = where.rsplit(":", 1)[0]
    where = where.split("site-packages/", 1)[-1].split("/work/main/", 1)[-1]
    where = where.split("lib/python3.11/", 1)[-1]
    return f"{name} ({where})" if where else name


def profile_summary(path: Path, top: int = 30) -> dict[str, Any]:
    """Share of the active samples per function (inclusive and self) and per product line,
    from a py-spy ``--format raw`` file. Event-loop and harness frames are left out of the
    inclusive ranking (they include everything)."""
    inclusive: dict[str, int] = defaultdict(int)
    own: dict[str, int] = defaultdict(int)
    product_lines: dict[str, int] = defaultdict(int)
    total = 0
    if not path.exists():
        return {"samples": 0, "inclusive": [], "self": [], "product_lines": []}
    for text in path.read_text(errors="replace").splitlines():
        stack, _, count = text.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw = stack.split(";")[1:]  # [0] is the thread
        frames = [_frame_name(f) for f in raw]
        total += n
        for name in set(frames):
            if not any(g in name for g in _GENERIC):
                inclusive[name] += n
        for name in {_frame_name(f, line=True) for f in raw if "asterisk_cube/" in f}:
            product_lines[name] += n
        if frames:
            own[frames[-1]] += n

    def rank(d: dict[str, int]) -> list[tuple[str, float]]:
        ordered = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(k, round(100 * v / max(1, total), 1)) for k, v in ordered]

    return {
        "samples": total,
        "inclusive": rank(inclusive),
        "self": rank(own),
        "product_lines": rank(product_lines),
    }


def machine(sandbox: SandboxInstance) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    version = "?"
    with contextlib.suppress(Exception):
        words = sandbox.rx("core show version").split()  # Asterisk 22.10.1+dfsg+... built by
        version = f"{words[0]} {words[1].split('+')[0]} (package {words[1]})"
    sipp = "?"
    with contextlib.suppress(Exception):
        sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip()
        sipp = next((ln.strip() for ln in sipp.splitlines() if "SIPp" in ln), sipp).rstrip(".")
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "asterisk": version,
        "sipp": sipp,
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "host": socket.gethostname(),
        "git": _git_state(),
    }


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "asterisk_cube"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return head + (" + uncommitted changes in asterisk_cube/" if dirty else "")


def _stage_rows(stages: dict[str, dict[str, float]]) -> list[str]:
    rows = []
    for name, s in stages.items():
        rows.append(
            f"| {name} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p90'])} | {fmt(s['p99'])} "
            f"| {fmt(s['max'])} |"
        )
    return rows


def markdown(results: dict[str, Any], command: str) -> str:
    mach = results["machine"]
    out = [
        "## Inbound dispatch and load",
        "",
        f"Date: {results['date']}. Command: `{command}` (`bench/inbound_bench/`; "
        "the module doc says exactly what is measured and how).",
        "",
        f"Machine: {mach['nproc']} cores, {mach['cpu']}, Python {mach['python']}, "
        f"{mach['asterisk']} (sandbox instance `bench`), {mach['sipp']}; "
        f"load average at start {mach['loadavg_start']}, "
        f"at the end {results.get('loadavg_end', '?')} "
        "(other work shared the machine). "
        f"Code: {mach['git']}. Database: {results['database']}. "
        + "The runtime (`wiring.build_runtime`: ARI supervisor, inbound Stasis app, distributor) "
        "runs in the bench process, logging INFO to a file as `serve` does; 20 SIPp agent "
        f"phones answer after {results['answer_ms']} ms.",
        "",
    ]
    lat = results.get("latency")
    if lat:
        out += [
            "### Dispatch latency",
            "",
            f"{lat['backlog_waiting']} callers wait on a line no agent staffs; 20 agents are ready "
            "on the probe line; probe calls arrive at "
            f"{results['probe_rate']}/s and hold 1.5-2.5 s. Times in ms.",
            "",
            "Bare ARI REST round trip, same run (idle: sequential, before the probes):",
            "",
            "| request | n | p50 | p90 | p99 | max |",
            "|---|---|---|---|---|---|",
            *_stage_rows(lat["bare_idle"]),
            "",
        ]
        bare = lat["bare_idle"]["ari GET /asterisk/info"]["p50"]
        for mode in results["modes"]:
            r = lat[mode]
            p99 = r["stages"]["start->orig"]["p99"]
            own99 = r["stages"]["start->orig minus offered->accept"]["p99"]
            bare99 = lat["bare_idle"]["ari GET /asterisk/info"]["p99"]
            outside = r.get("bare_outside") or {}
            out += [
                f"Agents in `{mode}` mode ({r['probes']} probe calls; SIPp {r['sipp']['ok']} ok, "
                f"{r['sipp']['fail']} failed):",
                "",
                "| stage | n | p50 | p90 | p99 | max |",
                "|---|---|---|---|---|---|",
                *_stage_rows(r["stages"]),
                "",
                f"StasisStart -> originate request p99 = {fmt(p99)} ms = "
                f"**{fmt(p99 / bare99, 1)}x** the bare round trip's p99 ({fmt(bare99)} ms): "
                f"target 3x p99 to p99 **{'met' if p99 <= 3 * bare99 else 'missed'}**; "
                f"{fmt(p99 / bare, 1)}x its p50 ({fmt(bare)} ms): 3x its median "
                f"**{'met' if p99 <= 3 * bare else 'missed'}**"
                + (
                    f"; {fmt(p99 / outside['p99'], 1)}x the p99 of the same round trip "
                    f"timed from another process during the probes ({fmt(outside['p99'])} ms, "
                    f"p50 {fmt(outside['p50'])}, n {outside['n']})"
                    if outside.get("n")
                    else ""
                )
                + ". Without the agent's reaction "
                f"(offer -> accept) p99 {fmt(own99)} ms = {fmt(own99 / bare, 1)}x. "
                f"Event-loop lag p50/p99/max {fmt(r['loop_lag']['p50'])}/"
                f"{fmt(r['loop_lag']['p99'])}/{fmt(r['loop_lag']['max'])} ms; "
                f"process CPU {fmt(r['cpu_ms_per_probe'], 1)} ms per probe call"
                + (
                    f"; {r['views']} desk views, {fmt(r['view_ms_mean'])} ms each on average"
                    if r["views"]
                    else ""
                )
                + (
                    f"; GET /metrics scraped {r['scrapes']['count']} times "
                    f"({r['scrapes']['bytes']} bytes, p50 {fmt(r['scrapes']['p50'])} ms, "
                    f"p99 {fmt(r['scrapes']['p99'])} ms)"
                    if r.get("scrapes", {}).get("count")
                    else ""
                )
                + ".",
                "",
                "REST requests during the probes (ms):",
                "",
                "| request | n | p50 | p90 | p99 | max |",
                "|---|---|---|---|---|---|",
                *_stage_rows(
                    r["rest_during"] | {"(sampler) " + k: v for k, v in r["bare_loaded"].items()}
                ),
                "",
                f"Synchronous work on the event loop during the probes (ms; n = count over "
                f"{r['probes']} probe calls and their hang-ups, {r['views'] or 'no'} desk views):",
                "",
                "| section | n | p50 | p90 | p99 | max |",
                "|---|---|---|---|---|---|",
                *_stage_rows(r["sync"]),
                "",
            ]
    load = results.get("load")
    if load:
        ck, cpu = load["check"], load["cpu"]
        out += [
            "### Load",
            "",
            f"{load['calls']} SIPp calls at {load['rate']}/s into 20 auto-accepting agents "
            f"(`{load['agent_mode']}` mode), callers hold {load['hold_ms'][0] // 1000}-"
            f"{load['hold_ms'][1] // 1000} s from the answer, then hang up.",
            "",
            f"* Outcome: {ck['db_calls']} call rows for {ck['sipp_created']} SIPp calls "
            f"({ck['distinct_callers']} distinct caller numbers); states {ck['states']}; "
            f"answered by an agent {ck['answered']}, missed {ck['states'].get('missed', 0)} "
            f"(every missed call has its missed-call record: "
            f"{'yes' if not ck['missed_without_record'] else 'NO'}); "
            f"SIPp {load['sipp']['ok']} ok / {load['sipp']['fail']} failed; agent legs in the "
            f"DB {ck['agent_legs']} (agent phones completed {ck.get('agent_phone_calls', '?')} "
            "calls, answered or cancelled while ringing); "
            f"Asterisk afterwards: {'; '.join(ck['asterisk_channels'])}; "
            f"agents left offered/busy: {ck['agents_stuck'] or 'none'}. "
            f"**{'None lost' if ck['ok'] else 'CHECK FAILED'}.**",
            f"* End reasons: {ck['end_reasons']}.",
            f"* Wait until answered (ms): p50 {fmt(ck['answer_wait']['p50'], 0)}, "
            f"p99 {fmt(ck['answer_wait']['p99'], 0)}; wait of missed callers p50 "
            f"{fmt(ck['missed_wait']['p50'], 0)}. Peak live calls {load['peak']['live']}, "
            f"peak waiting {load['peak']['waiting']}. Calls per agent: {ck['calls_per_agent']}.",
            f"* CPU over the run ({fmt(load['wall_s'], 1)} s wall): this process "
            f"{fmt(cpu['process_ms'], 0)} ms = **{fmt(cpu['process_ms_per_call'], 1)} ms per "
            f"call** ({fmt(cpu['process_share_of_core'] * 100, 1)} % of one core); Asterisk "
            f"{fmt(cpu['asterisk_ms'], 0)} ms = **{fmt(cpu['asterisk_ms_per_call'], 1)} ms per "
            f"call** ({fmt(cpu['asterisk_share_of_core'] * 100, 1)} % of one core). Idle "
            f"before the run: process {fmt(cpu['idle']['process_ms_per_s'], 1)} ms/s, Asterisk "
            f"{fmt(cpu['idle']['asterisk_ms_per_s'], 1)} ms/s. The 20 SIPp phones used "
            f"{fmt(cpu['sipp_phones_ms'], 0)} ms, the SIPp caller "
            f"{fmt(cpu['sipp_callers_ms_total'], 0)} ms.",
            f"* Event-loop lag p50/p99/max {fmt(load['loop_lag']['p50'])}/"
            f"{fmt(load['loop_lag']['p99'])}/{fmt(load['loop_lag']['max'])} ms.",
            "",
            "| stage under load (ms) | n | p50 | p90 | p99 | max |",
            "|---|---|---|---|---|---|",
            *_stage_rows(load["stages"]),
            "",
        ]
    return "\n".join(out) + "\n"
