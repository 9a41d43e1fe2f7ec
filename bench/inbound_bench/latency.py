"""Part 1, dispatch latency (see the package doc): probes beside bare REST round trips."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.inbound_bench.agents import BenchAgents
from bench.inbound_bench.common import (
    DID_BACKLOG,
    DID_PROBE,
    OUTSIDE_SAMPLER,
    SCRAPER,
    summary_ms,
    until,
)
from bench.inbound_bench.measure import (
    LoopLag,
    process_cpu_s,
)


class LatencyPart:
    """``Bench``'s latency part (its attributes are the harness's)."""

    # mypy/ruff: attributes set by Bench.__init__ / setup
    args: Any
    sandbox: Any
    workdir: Path
    runtime: Any

    # ---- bare REST round trips
    async def bare_rtt(self, n: int, channel: str) -> dict[str, dict[str, float]]:
        client = self.runtime.state.supervisor.client
        a = self.settings.ari
        out: dict[str, list[float]] = defaultdict(list)
        async with httpx.AsyncClient(
            base_url=self.sandbox.ari_url, auth=(a.username, a.password)
        ) as raw:
            await raw.get("/ari/asterisk/info")
            for _ in range(n):
                t0 = time.monotonic()
                await client.asterisk.getInfo()
                t1 = time.monotonic()
                await client.channels.getChannelVar(channelId=channel, variable="CALLERID(num)")
                t2 = time.monotonic()
                (await raw.get("/ari/asterisk/info")).raise_for_status()
                t3 = time.monotonic()
                out["ari GET /asterisk/info"].append(t1 - t0)
                out["ari GET /channels/*/variable"].append(t2 - t1)
                out["httpx GET /asterisk/info"].append(t3 - t2)
        return {k: summary_ms(v) for k, v in out.items()}

    async def _rtt_sampler(self, channel: str, sink: dict[str, list[float]]) -> None:
        client = self.runtime.state.supervisor.client
        while True:
            t0 = time.monotonic()
            with contextlib.suppress(Exception):
                await client.asterisk.getInfo()
                sink["ari GET /asterisk/info"].append(time.monotonic() - t0)
            t1 = time.monotonic()
            with contextlib.suppress(Exception):
                await client.channels.getChannelVar(channelId=channel, variable="CALLERID(num)")
                sink["ari GET /channels/*/variable"].append(time.monotonic() - t1)
            await asyncio.sleep(0.1)

    def _start_outside_sampler(self, path: Path) -> subprocess.Popen:
        """The bare round trip from *another process* while the probes run: it sees the
        machine's load as the product does, without the product's own event loop."""
        a = self.settings.ari
        args = [OUTSIDE_SAMPLER, self.sandbox.ari_url, a.username, a.password, str(path)]
        return subprocess.Popen([sys.executable, "-c", *args])

    @staticmethod
    def _stop_outside_sampler(proc: subprocess.Popen, path: Path) -> list[float]:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        with contextlib.suppress(OSError):
            return [float(x) for x in path.read_text().split()]
        return []

    # ---- part 1
    async def latency(self) -> None:
        args = self.args
        out: dict[str, Any] = {}
        # 50 callers wait on a line nobody staffs
        await self.staff(None)
        backlog = self._caller(
            "backlog",
            DID_BACKLOG,
            1,
            "9150",
            (3_600_000, 3_600_000),
            calls=args.backlog,
            rate=20,
            limit=args.backlog,
        ).start()
        await until(
            lambda: len(self._waiting_on(DID_BACKLOG)) >= args.backlog,
            60,
            f"{args.backlog} backlog callers waiting",
        )
        backlog_channels = self._waiting_on(DID_BACKLOG)
        out["backlog_waiting"] = len(backlog_channels)
        await self.staff(DID_PROBE)
        await asyncio.sleep(1.0)
        out["bare_idle"] = await self.bare_rtt(args.rtt_samples, backlog_channels[0])
        for mode in args.modes:
            out[mode] = await self._probe_run(mode, backlog_channels[0])
        # the backlog callers leave (their calls become missed calls)
        await self._hangup_channels(self._waiting_on(DID_BACKLOG))
        res = await asyncio.to_thread(backlog.wait, 60)
        out["backlog_sipp"] = {"created": res.created, "ok": res.successful, "fail": res.failed}
        self.results["latency"] = out

    async def _probe_run(self, mode: str, rtt_channel: str) -> dict[str, Any]:
        """``mode``: an agent mode, ``+scrape`` to have GET /metrics scraped every second
        by another process meanwhile (issue #15: metrics must not cost the call path)."""
        args = self.args
        agent_mode, _, extra = mode.partition("+")
        scrape_file = self.workdir / f"scrapes-{mode}.txt"
        scraper = None
        if extra == "scrape":
            url = self.runtime.state.web_url + "metrics"
            scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, url, str(scrape_file)])
        agents = BenchAgents(self.distributor, self.hub, self.agent_ids, agent_mode)
        agents.start()
        self.marks.t.clear()
        self.marks.rest.clear()
        self.marks.sync.clear()
        before = set(self.distributor.by_channel)
        loaded: dict[str, list[float]] = defaultdict(list)
        sampler = asyncio.create_task(self._rtt_sampler(rtt_channel, loaded))
        outside_file = self.workdir / f"outside-rtt-{mode}.txt"
        outside = self._start_outside_sampler(outside_file)
        lag = LoopLag()
        lag.start()
        self.spy_start(f"latency-{mode}")
        cpu0 = process_cpu_s()
        probe = self._caller(
            f"probe-{mode}",
            DID_PROBE,
            0,
            "9170",
            (1500, 2500),
            calls=args.probes,
            rate=args.probe_rate,
            limit=args.probes,
        ).start()
        res = await asyncio.to_thread(probe.wait, args.probes / args.probe_rate + 60)
        await until(
            lambda: not any(call.line_id == self.line_ids[DID_PROBE] for call in self._live()),
            30,
            "probe calls closed",
        )
        cpu = process_cpu_s() - cpu0
        self.spy_stop()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        outside_rtt = self._stop_outside_sampler(outside, outside_file)
        scrapes: list[float] = []
        scrape_bytes = 0
        if scraper is not None:
            scraper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                scraper.wait(5)
            with contextlib.suppress(OSError):
                for row in scrape_file.read_text().split("\n"):
                    if row.strip():
                        seconds, size = row.split()
                        scrapes.append(float(seconds))
                        scrape_bytes = int(size)
        loop_lag = await lag.stop()
        await agents.stop()
        channels = [ch for ch, st in self.marks.t.items() if "start" in st and ch not in before]
        stage = {}
        pairs = [
            ("ws", "start"),
            ("start", "arrived"),
            ("arrived", "offered"),
            ("offered", "accept"),
            ("accept", "orig"),
            ("orig", "orig_ok"),
            ("start", "offered"),
            ("start", "orig"),
            ("ws", "orig"),
        ]
        for a, b in pairs:
            stage[f"{a}->{b}"] = summary_ms(self.marks.deltas(channels, a, b))
        # the product's own share: StasisStart -> originate minus the agent's reaction
        own = []
        for ch in channels:
            st = self.marks.t[ch]
            if all(k in st for k in ("start", "offered", "accept", "orig")):
                own.append(st["orig"] - st["start"] - (st["accept"] - st["offered"]))
        stage["start->orig minus offered->accept"] = summary_ms(own)
        rest = {k: summary_ms(v) for k, v in sorted(self.marks.rest.items())}
        sync = {k: summary_ms(v) for k, v in sorted(self.marks.sync.items())}
        return {
            "sync": sync,
            "probes": len(channels),
            "sipp": {"created": res.created, "ok": res.successful, "fail": res.failed},
            "stages": stage,
            "rest_during": rest,
            "bare_loaded": {k: summary_ms(v) for k, v in loaded.items()},
            "bare_outside": summary_ms(outside_rtt),
            "loop_lag": loop_lag,
            "scrapes": {"count": len(scrapes), "bytes": scrape_bytes, **summary_ms(scrapes)},
            "cpu_ms_per_probe": cpu * 1000 / max(1, len(channels)),
            "views": agents.views,
            "view_ms_mean": agents.view_seconds * 1000 / max(1, agents.views),
            "accepted": agents.accepted,
            "refused": dict(agents.refused),
            "re_readied": agents.re_readied,
        }
