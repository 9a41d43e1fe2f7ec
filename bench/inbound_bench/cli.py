"""``python -m bench.inbound_bench``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import bench.inbound_bench as package
from asterisk_cube import logs
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import ensure_host_tools
from bench.inbound_bench.common import (
    BASE_PORT,
    INSTANCE,
)
from bench.inbound_bench.harness import Bench
from bench.inbound_bench.report import machine, markdown, profile_summary

# ---------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, sandbox: SandboxInstance, workdir: Path) -> dict:
    bench = Bench(args, sandbox, workdir)
    try:
        await bench.setup()
        if args.part in ("all", "latency"):
            await bench.latency()
        if args.part in ("all", "load"):
            await bench.load()
    finally:
        await bench.teardown()
    return bench.results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.inbound_bench",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="40 probes, 60 load calls")
    ap.add_argument("--part", choices=("all", "latency", "load"), default="all")
    ap.add_argument(
        "--modes",
        default="desktop,direct",
        help="agent modes for the latency part; MODE+scrape: GET /metrics every second meanwhile",
    )
    ap.add_argument("--load-mode", default="desktop", choices=("desktop", "direct"))
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--probe-rate", type=float, default=4.0)
    ap.add_argument("--backlog", type=int, default=50)
    ap.add_argument("--rtt-samples", type=int, default=300)
    ap.add_argument("--load-calls", type=int, default=200)
    ap.add_argument("--load-rate", type=float, default=5.0)
    ap.add_argument("--hold-min-ms", type=int, default=8000)
    ap.add_argument("--hold-max-ms", type=int, default=15000)
    ap.add_argument("--answer-ms", type=int, default=200, help="agent phones answer after")
    ap.add_argument("--database-url", default="", help="default: SQLite in the work dir")
    ap.add_argument("--workdir", default="", help="default: a new directory under /tmp")
    ap.add_argument("--py-spy", action="store_true", help="profile each part (py-spy raw)")
    ap.add_argument("--keep-sandbox", action="store_true", help="leave instance 'bench' up")
    ap.add_argument("--base-port", type=int, default=BASE_PORT)
    ap.add_argument("--instance", default=INSTANCE, help="sandbox instance name")
    args = ap.parse_args(argv)
    if args.quick:
        args.probes, args.load_calls, args.rtt_samples = 40, 60, 100
    args.modes = [x.strip() for x in args.modes.split(",") if x.strip()]
    if os.geteuid() != 0:
        print("needs root (the sandbox chroot)", file=sys.stderr)
        return 2
    ensure_host_tools("sipp")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="inbound-bench-"))
    if workdir.exists() and args.workdir:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logs.configure("INFO", "kv", stream=open(workdir / "serve.log", "w"))  # noqa: SIM115
    logging.getLogger("asterisk_cube").setLevel(logging.INFO)
    sandbox = SandboxInstance(args.instance, args.base_port)
    if sandbox.is_running():
        sandbox.down()
    print(
        f"work dir {workdir}; sandbox {args.instance!r} on base port {args.base_port}", flush=True
    )
    sandbox.up(reset_dialplan=True)
    results: dict[str, Any] = {}
    try:
        results = {
            "date": dt.date.today().isoformat(),
            "machine": machine(sandbox),
            "database": "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite",
            "answer_ms": args.answer_ms,
            "probe_rate": args.probe_rate,
            "modes": args.modes,
        }
        results |= asyncio.run(run(args, sandbox, workdir))
    finally:
        results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        if not args.keep_sandbox:
            sandbox.down()
    command = "python -m bench.inbound_bench" + (" --quick" if args.quick else "")
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results, command)
    (workdir / "section.md").write_text(text)
    print(text)
    print(f"results: {workdir / 'results.json'}, {workdir / 'section.md'}")
    if args.py_spy:
        profiles = {f.stem: profile_summary(f) for f in sorted(workdir.glob("py-spy-*.txt"))}
        (workdir / "profiles.json").write_text(json.dumps(profiles, indent=2) + "\n")
        for name, prof in profiles.items():
            print(f"\n{name}: {prof['samples']} samples")
            print("  inclusive %:")
            for fn, share in prof["inclusive"]:
                print(f"    {share:5.1f}  {fn}")
            print("  self %:")
            for fn, share in prof["self"][:15]:
                print(f"    {share:5.1f}  {fn}")
            print("  product lines (inclusive %):")
            for fn, share in prof["product_lines"]:
                print(f"    {share:5.1f}  {fn}")
    ok = results.get("load", {}).get("check", {}).get("ok", True)
    return 0 if ok else 1
