"""How long one login's password check takes beside busy processes (issue #11 item 11).

    python -m bench.login_nice [--busy 3] [--checks 3] [--nice 19,10,5,0]

The web's password checks run in their own low-priority thread (``web/auth.PasswordGate``)
so that argon2 yields the CPU to the event loop carrying the calls. How low matters: the
scheduler weighs a thread's nice value against every runnable thread of its autogroup, and
everything one shell starts (a test run: pytest, serve, SIPp) is one autogroup. This starts
``--busy`` CPU-bound processes from this process (one group with it), then times
``--checks`` checks of the demo password in a one-thread pool at each nice level, and
prints each level's median against nice 0's (a ratio: the machine's other load moves the
absolute times).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import threading
import time

from asterisk_cube.passwords import hash_password, verify_password


def _nice(level: int) -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), level)


def check_seconds(stored: str, level: int, checks: int) -> list[float]:
    with concurrent.futures.ThreadPoolExecutor(1, initializer=_nice, initargs=(level,)) as pool:
        times = []
        for _ in range(checks):
            began = time.monotonic()
            assert pool.submit(verify_password, stored, "demo-password").result()
            times.append(time.monotonic() - began)
        return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, default=3, help="CPU-bound processes beside it")
    ap.add_argument("--checks", type=int, default=3)
    ap.add_argument("--nice", default="19,10,5,0", help="nice levels to time")
    args = ap.parse_args()
    levels = [int(n) for n in args.nice.split(",")]
    stored = hash_password("demo-password")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(1.0)
        medians = {n: statistics.median(check_seconds(stored, n, args.checks)) for n in levels}
    finally:
        for proc in busy:
            proc.kill()
    base = medians.get(0)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.busy} busy processes beside it, load average {load}")
    print("| nice | password check, median s | vs nice 0 |")
    print("|---|---|---|")
    for n, s in medians.items():
        print(f"| {n} | {s:.2f} | {s / base:.1f}x |" if base else f"| {n} | {s:.2f} | |")


if __name__ == "__main__":
    main()
