"""``python -m bench.dialer_sim``: see the package docstring."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

from . import __doc__ as DOC
from .matrix import (
    _print_micro,
    check_targets,
    format_seeds,
    format_table,
    machine_info,
    microbenchmark,
    run_matrix,
)
from .model import DEFAULT_SCENARIOS, SCENARIOS, SEEDS, SHIFT_HOURS
from .sim import run_one


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.dialer_sim", description=(DOC or "").split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="2 seeds, 2-hour shifts")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument(
        "--scenarios", nargs="*", default=list(DEFAULT_SCENARIOS), choices=list(SCENARIOS)
    )
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write the raw summaries to this file")
    ap.add_argument("--micro", action="store_true", help="decision time only")
    ap.add_argument(
        "--one",
        help="run one policy (predictive, power, vicidial, oracle, "
        "ratio:R, level:L, or predictive:JSON, a variant: PacingConfig fields) for the "
        "given scenarios and print per-seed results",
    )
    args = ap.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else SEEDS)
    hours = args.hours or (2.0 if args.quick else SHIFT_HOURS)
    if args.micro:
        _print_micro(microbenchmark())
        _print_micro(microbenchmark(odds=True))
        return 0

    if args.one:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for sc in args.scenarios:
                seed_range = range(args.first_seed, args.first_seed + seeds)
                jobs = [(args.one, sc, s, hours) for s in seed_range]
                runs = list(pool.map(run_one, jobs))
                for x in runs:
                    print(
                        f"{args.one} {sc} seed={x.seed} util={x.utilisation:.3f} "
                        f"abandon={x.abandon_rate:.2%} ({x.abandoned}/{x.answered}) "
                        f"worst20={x.worst_window:.1%} (sliding {x.worst_sliding:.1%}) "
                        f"cph={x.connects_per_agent_hour:.1f} dials={x.dials} "
                        f"decide={x.decision_seconds / max(1, x.decisions) * 1e6:.0f}us "
                        f"p99={x.decision_p99_us:.0f}us"
                    )
                u = sum(x.utilisation for x in runs) / len(runs)
                print(f"== {args.one} {sc}: mean util {u:.3f}")
        return 0

    t0 = time.perf_counter()
    out = run_matrix(seeds, hours, args.scenarios, args.workers)
    micro = microbenchmark()
    wall = time.perf_counter() - t0
    summaries = out["summaries"]
    print(format_table(summaries))
    print()
    print(format_seeds(summaries))
    print()
    _print_micro(micro)
    for name, ok, detail in check_targets(summaries):
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    info = machine_info()
    print(
        f"seeds={seeds} hours={hours} wall={wall:.0f}s nproc={info['nproc']} cpu={info['cpu']} "
        f"python={info['python']} load={info['load']:.1f}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "seeds": seeds,
                    "hours": hours,
                    "wall_seconds": wall,
                    "machine": info,
                    "micro": micro,
                    "summaries": [
                        {k: v for k, v in asdict(s).items() if k != "runs"} for s in summaries
                    ],
                },
                fh,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
