"""The inbound bench's constants (instance, ports, lines) and small helpers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asterisk_cube.core import agents as ag

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import sippkit  # noqa: E402, F401  (the test suite's SIPp helper: pinned ports, stats)

INSTANCE, BASE_PORT = "bench", 41000
N_AGENTS = 20
DID_PROBE, DID_BACKLOG, DID_LOAD = "4721000101", "4721000102", "4721000103"
# Run by a separate Python process during the probes (see _start_outside_sampler).
OUTSIDE_SAMPLER = r"""
import sys, time, httpx
url, user, password, out = sys.argv[1:5]
with httpx.Client(base_url=url, auth=(user, password)) as c, open(out, "w") as f:
    c.get("/ari/asterisk/info")
    while True:
        t0 = time.monotonic()
        c.get("/ari/asterisk/info").raise_for_status()
        f.write(f"{time.monotonic() - t0}\n")
        f.flush()
        time.sleep(0.05)
"""

# Prometheus as a separate process: GET /metrics every second during a "+scrape" run.
SCRAPER = r"""
import sys, time, httpx
url, out = sys.argv[1:3]
with httpx.Client() as c, open(out, "w") as f:
    while True:
        t0 = time.monotonic()
        r = c.get(url)
        r.raise_for_status()
        f.write(f"{time.monotonic() - t0} {len(r.content)}\n")
        f.flush()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
"""

STAGES = ("ws", "start", "arrived", "offered", "accept", "orig", "orig_ok")
SYSTEM_PAUSES = {ag.PauseReason.NO_ANSWER.value}

# The bench caller's scenario; uac_scenario() fills in the caller prefix and hold range.
UAC_TEMPLATE = Path(__file__).resolve().parents[1] / "sipp" / "uac_hold.xml.in"


def uac_scenario(path: Path, prefix: str, min_ms: int, max_ms: int) -> Path:
    text = UAC_TEMPLATE.read_text().replace("@PREFIX@", prefix)
    path.write_text(text.replace("@MIN@", str(min_ms)).replace("@MAX@", str(max_ms)))
    return path


# ---------------------------------------------------------------------------- statistics


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p90": pct(ms, 90),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "mean": sum(ms) / len(ms) if ms else float("nan"),
    }


def fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


async def until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)
