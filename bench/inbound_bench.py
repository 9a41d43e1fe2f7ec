"""Inbound dispatch latency and load on the sandbox Asterisk, with the product's runtime in-process.

    python -m bench.inbound_bench            # latency (200 probe calls x 2 agent modes) + load
    python -m bench.inbound_bench --quick    # a smoke run: 40 probes, 60 load calls
    python -m bench.inbound_bench --part latency|load
    python -m bench.inbound_bench --help

Needs root (the sandbox chroot) and SIPp. It brings up its own sandbox instance
``bench`` (base port 41000: ports 41038..45300 with the SIPp phones), provisions a
fresh SQLite database (or ``--database-url``), installs the generated dialplan and
runs ``wiring.build_runtime`` (ARI supervisor + inbound Stasis app + distributor) on
this process's event loop, exactly as ``serve`` does (logging INFO to a file).
20 SIPp agent phones answer after ``--answer-ms``; 20 bench agents drive the
distributor's desk API and accept every offer at once.

Bench agents, two modes:

* ``desktop``: like the desktop's SSE stream (``web/push.py``): one hub subscription
  per agent, a burst of ``AgentViewChanged`` is coalesced, then ``desk.view(agent)``
  is read, rendered and serialised as the push does (what the browser would be sent)
  and acted on; a burst of only ``DeskLineCount`` (a line's queue changed, issue #19)
  is serialised as the push's ``count`` message instead. Acting: close an ended call card,
  accept an offer, make itself ready at once after a system pause (no_answer). This
  is the cost ``serve`` pays with 20 desktops open.
* ``direct``: the same reactions, read from the distributor's in-memory state instead
  of ``desk.view`` (no DB reads): the dispatch path without view rendering.

Part 1, dispatch latency: 50 callers wait on a "backlog" line no agent staffs (the
routing core weighs them on every decision, the desk views count them), 20 agents are
ready on the "probe" line, and probe calls arrive at ``--probe-rate`` and hold 1.5-2.5 s.
Monotonic timestamps per probe call, taken by wrapping (never editing) product objects:

  ws       the ARI client decodes the StasisStart frame (``AriClient.decode``)
  start    the supervisor dispatches StasisStart (``_dispatch``)
  arrived  ``distributor.call_arrived`` entered (answered, in the holding bridge)
  offered  ``distributor._offer`` returned (offer stored, AgentViewChanged published)
  accept   ``distributor.accept`` entered (the bench agent's reaction)
  orig     the HTTP ``POST /channels`` originate to the agent is issued
  orig_ok  Asterisk answered that request

Beside it, in the same run: the bare ARI REST round trip, ``GET /asterisk/info`` and a
channel-variable GET through the same ARI client (its HTTP pool), and
``GET /asterisk/info`` with a plain httpx client; sequentially before the probes
(idle) and every 100 ms during them (loaded, same event loop); and ``GET
/asterisk/info`` every 50 ms from a separate process during the probes (the machine's
load as the product sees it, without the product's event loop). The verdict compares
p99 with p99 of the idle round trip, and also says how far the p99 is from 3x its median.

Part 2, load: ``--load-calls`` SIPp calls at ``--load-rate`` calls/s on a third line,
callers hold 8-15 s (uniform, from Asterisk's answer) then hang up; 20 agents. Checked
afterwards: every call has a DB row that is ENDED (answered) or MISSED (with a missed-
call record), the count equals the calls SIPp placed, SIPp saw every call succeed,
Asterisk holds no channel and no agent is left offered/busy (exit code 1 otherwise);
agent legs in the DB and the agent phones' completed calls are reported beside.
CPU: this process (``resource.getrusage``: the runtime plus the bench agents) and
Asterisk (``/proc/<pid>/stat``) over the run, per call; event-loop lag sampled every 5 ms.

Both parts also time the synchronous work on the loop (each distributor DB transaction,
by the method that opened it, and ``Distributor.dispatch``) and every ARI REST request.
``--py-spy`` records each part with py-spy (``pip install py-spy``) and prints the
functions and product lines with the largest share of samples.

Results: a JSON file and a markdown section in the work directory (``--workdir``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from asterisk_cube import dialplan as dp
from asterisk_cube import logs
from asterisk_cube.acd import contract as c
from asterisk_cube.ari.supervisor import event_json, event_type
from asterisk_cube.config import load_settings
from asterisk_cube.core import agents as ag
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import ensure_host_tools
from asterisk_cube.services import provisioning as p
from asterisk_cube.web import push
from asterisk_cube.wiring import build_runtime

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import sippkit  # noqa: E402  (the test suite's SIPp helper: pinned ports, stats)

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
UAC_TEMPLATE = Path(__file__).resolve().parent / "sipp" / "uac_hold.xml.in"


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


# ---------------------------------------------------------------------------- probes


class Marks:
    """Monotonic timestamps per caller channel, per stage (first one wins)."""

    def __init__(self) -> None:
        self.t: dict[str, dict[str, float]] = defaultdict(dict)
        self.rest: dict[str, list[float]] = defaultdict(list)  # "METHOD /path" -> seconds
        self.sync: dict[str, list[float]] = defaultdict(list)  # synchronous sections
        self.enabled = True

    def mark(self, channel: str | None, stage: str, at: float | None = None) -> None:
        if self.enabled and channel:
            self.t[channel].setdefault(stage, time.monotonic() if at is None else at)

    def deltas(self, channels: list[str], a: str, b: str) -> list[float]:
        out = []
        for ch in channels:
            st = self.t.get(ch, {})
            if a in st and b in st:
                out.append(st[b] - st[a])
        return out


def _rest_key(method: str, url: str) -> str:
    path = url.split("/ari/", 1)[-1]
    parts = path.split("/")
    # collapse ids: channels/<id>/answer -> channels/*/answer
    keep = [parts[0]] + ["*" if i % 2 == 1 else seg for i, seg in enumerate(parts[1:], 1)]
    return f"{method} /{'/'.join(keep)}"


def instrument(runtime: Any, marks: Marks) -> None:
    """Wrap (per instance, never edit) the product objects that mark the stages."""
    state = runtime.state
    sup = state.supervisor
    distributor = state.extras["distributor"]
    inbound = distributor.telephony

    orig_dispatch = sup._dispatch

    def dispatch(event: Any, client: Any) -> bool:
        if event_type(event) == "StasisStart":
            raw = event_json(event)
            args = raw.get("args") or []
            if args and args[0] in ("inbound", "service"):
                marks.mark((raw.get("channel") or {}).get("id"), "start")
        return orig_dispatch(event, client)

    sup._dispatch = dispatch

    orig_arrived = distributor.call_arrived

    def call_arrived(channel_id: str, *args: Any, **kwargs: Any) -> int:
        marks.mark(channel_id, "arrived")
        return orig_arrived(channel_id, *args, **kwargs)

    distributor.call_arrived = call_arrived

    orig_offer = distributor._offer

    def offer(call: Any, *args: Any, **kwargs: Any) -> None:
        orig_offer(call, *args, **kwargs)
        marks.mark(call.channel_id, "offered")

    distributor._offer = offer

    orig_accept = distributor.accept

    async def accept(agent_id: int, call_id: int) -> None:
        call = distributor.calls.get(call_id)
        marks.mark(call.channel_id if call else None, "accept")
        await orig_accept(agent_id, call_id)

    distributor.accept = accept

    # synchronous work on the loop: DB transactions (by caller) and routing decisions
    orig_tx = distributor._tx

    @contextlib.contextmanager
    def tx():
        caller = sys._getframe(2).f_code.co_name  # _tx <- contextmanager <- caller
        started = time.perf_counter()
        with orig_tx() as s:
            yield s
        if marks.enabled:
            marks.sync[f"db transaction in {caller}"].append(time.perf_counter() - started)

    distributor._tx = tx
    orig_dispatch_calls = distributor.dispatch

    def dispatch_calls() -> None:
        started = time.perf_counter()
        orig_dispatch_calls()
        if marks.enabled:
            marks.sync["Distributor.dispatch (incl. offers)"].append(time.perf_counter() - started)

    distributor.dispatch = dispatch_calls
    _instrument_client(sup, distributor, marks)
    assert inbound is not None


def _instrument_client(sup: Any, distributor: Any, marks: Marks) -> None:
    client = sup.client
    decode = client.decode

    def decode_marked(data: str) -> dict:
        msg = decode(data)
        if msg.get("type") == "StasisStart":
            args = msg.get("args") or []
            if args and args[0] in ("inbound", "service"):
                marks.mark((msg.get("channel") or {}).get("id"), "ws")
        return msg

    client.decode = decode_marked
    orig_request = client.request

    async def request(method: str, path: str, params: Any = None, body: Any = None) -> Any:
        started = time.monotonic()
        channel = None
        app_args = str((params or {}).get("appArgs", ""))
        if method == "POST" and path == "channels" and app_args.startswith("agent,"):
            call = distributor.calls.get(int(app_args.split(",")[1]))
            channel = call.channel_id if call else None
            marks.mark(channel, "orig", started)
        try:
            return await orig_request(method, path, params, body)
        finally:
            done = time.monotonic()
            marks.mark(channel, "orig_ok", done)
            if marks.enabled:
                marks.rest[_rest_key(method, path)].append(done - started)

    client.request = request


# ---------------------------------------------------------------------------- bench agents


class BenchAgents:
    """20 agents that accept every offer at once (see the module doc for the two modes)."""

    def __init__(self, distributor: Any, hub: Any, agent_ids: list[int], mode: str) -> None:
        self.desk = distributor
        self.hub = hub
        self.agent_ids = agent_ids
        self.mode = mode
        self.tasks: list[asyncio.Task] = []
        self.accepted = 0
        self.refused: dict[str, int] = defaultdict(int)
        self.re_readied = 0
        self.views = 0
        self.view_seconds = 0.0
        self.sent = 0  # characters the desks' pushes would send

    def start(self) -> None:
        for agent_id in self.agent_ids:
            self.tasks.append(asyncio.create_task(self._run(agent_id), name=f"agent-{agent_id}"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _run(self, agent_id: int) -> None:
        sub = self.hub.subscribe(  # as web/push.py: only this agent's changes
            c.AgentViewChanged,
            # an open desk gets its line counts; direct agents have none open
            *([c.DeskLineCount] if self.mode == "desktop" and hasattr(c, "DeskLineCount") else []),
            maxsize=256,
            name=f"bench-agent-{agent_id}",
            agent_id=agent_id,
        )
        try:
            await self._act(agent_id)
            while True:
                try:
                    event = await sub.get()
                except EOFError:
                    return
                relevant = False
                counts: dict[int, c.LineCount] = {}
                while event is not None:
                    if not isinstance(event, c.AgentViewChanged):
                        counts[event.count.line_id] = event.count
                    else:
                        relevant = True
                    event = sub.get_nowait()
                if sub.take_stale():
                    relevant = True
                if relevant:
                    await self._act(agent_id)
                elif counts and self.mode == "desktop":  # what the push sends for a count
                    self.sent += sum(len(push.count_message(n)) for n in counts.values())
        finally:
            sub.close()

    def _look(self, agent_id: int) -> tuple[int | None, int | None, str, str | None]:
        d = self.desk
        agent = d.agents[agent_id]
        offer = next(
            (
                call.call_id
                for call in d.calls.values()
                if call.phase == "offered" and call.agent_id == agent_id
            ),
            None,
        )
        card = d.calls.get(agent.card_call_id) if agent.card_call_id else None
        ended = card.call_id if card is not None and card.phase == "ended" else None
        return offer, ended, agent.status.state.value, agent.status.pause_reason

    async def _act(self, agent_id: int) -> None:
        try:
            if self.mode == "desktop":
                started = time.perf_counter()
                view = await self.desk.view(agent_id)
                self.sent += len(push.sse_message("view", view.to_dict()))  # as the push
                self.view_seconds += time.perf_counter() - started
                self.views += 1
                offer = view.offer.call_id if view.offer else None
                ended = view.call.call_id if view.call and view.call.state == "ended" else None
                state, reason = view.state, view.pause_reason
            else:
                offer, ended, state, reason = self._look(agent_id)
            if ended is not None:  # close the last card first (accepting would orphan it)
                await self.desk.close_call(agent_id, ended)
            if offer is not None:
                await self.desk.accept(agent_id, offer)
                self.accepted += 1
            if state == "paused" and reason in SYSTEM_PAUSES:
                await self.desk.ready(agent_id)
                self.re_readied += 1
        except c.Refused as exc:  # raced with the caller hanging up: normal under load
            self.refused[exc.reason] += 1


# ---------------------------------------------------------------------------- CPU


def asterisk_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def process_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def pids_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += asterisk_cpu_s(pid)
    return total


class LoopLag:
    """How late a 5 ms sleep wakes up: the event loop's responsiveness."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            self.lags.append(time.monotonic() - before - self.interval)

    async def stop(self) -> dict[str, float]:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        return summary_ms(self.lags)


# ---------------------------------------------------------------------------- the harness


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


class Bench:
    def __init__(self, args: argparse.Namespace, sandbox: SandboxInstance, workdir: Path) -> None:
        self.args = args
        self.sandbox = sandbox
        self.workdir = workdir
        self.results: dict[str, Any] = {}
        self.marks = Marks()
        self.phones: list[sippkit.Sipp] = []
        self.spy: subprocess.Popen | None = None

    # ---- profiling (py-spy, optional)
    def spy_start(self, name: str) -> None:
        if not self.args.py_spy:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self.workdir / f"py-spy-{name}.txt"
        self.spy = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(os.getpid()),
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def spy_stop(self) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.spy.wait(30)
            self.spy = None

    # ---- setup
    async def setup(self) -> None:
        env = {**self.sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(self.workdir / "data")}
        if self.args.database_url:
            env["ASTERISK_CUBE_DATABASE_URL"] = self.args.database_url
        settings = load_settings(env=env)
        self.settings = settings
        upgrade(settings.database_url)
        self.sessions = make_sessionmaker(make_engine(settings.database_url))
        dids = [DID_PROBE, DID_BACKLOG, DID_LOAD]
        with transaction(self.sessions) as s:
            p.add_line(s, DID_PROBE, "Probe", priority=5)
            p.add_line(s, DID_BACKLOG, "Backlog", priority=1)
            p.add_line(s, DID_LOAD, "Load", priority=5)
            for n in range(1, N_AGENTS + 1):
                p.add_agent(s, f"agent{n:02d}", endpoint=f"PJSIP/agent{n:02d}", lines=dids)
        with transaction(self.sessions) as s:
            self.agent_ids = [a.id for a in s.scalars(select(m.Agent).order_by(m.Agent.id))]
            self.line_ids = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
            text = dp.render(s, settings)
        await asyncio.to_thread(dp.install, text, settings)  # runs its own AMI loop
        self.runtime = build_runtime(settings, install_signal_handlers=False)
        self.runtime_task = asyncio.create_task(self.runtime.run(), name="runtime")
        state = self.runtime.state
        await until(
            lambda: (
                state.supervisor is not None
                and state.supervisor.connected
                and "distributor" in state.extras
            ),
            30,
            "ARI connected",
        )
        await asyncio.sleep(0.5)  # the first resync
        self.distributor = state.extras["distributor"]
        self.hub = state.hub
        instrument(self.runtime, self.marks)
        for n in range(1, N_AGENTS + 1):
            phone = sippkit.phone(
                self.sandbox,
                self.sandbox.agent_port(n),
                self.workdir / "phones" / f"agent{n:02d}",
                answer_ms=self.args.answer_ms,
                trace_messages=False,
            )
            self.phones.append(phone.started())
        for agent_id in self.agent_ids:
            await self.distributor.login(agent_id)

    async def staff(self, did: str | None) -> None:
        """All agents serve ``did`` (None: no line) and are ready."""
        line_ids = [self.line_ids[did]] if did else []
        for agent_id in self.agent_ids:
            await self.distributor.choose_lines(agent_id, line_ids)
            if self.distributor.agents[agent_id].status.state.value != "ready":
                with contextlib.suppress(c.Refused):
                    await self.distributor.ready(agent_id)

    async def teardown(self) -> None:
        for phone in self.phones:
            with contextlib.suppress(Exception):
                phone.stop()
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            runtime.request_stop("bench done")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.runtime_task, 20)

    def _caller(self, name: str, did: str, slot: int, prefix: str, hold: tuple[int, int], **kw):
        scenario = uac_scenario(self.workdir / f"{name}.xml", prefix, *hold)
        return sippkit.Sipp(
            scenario,
            self.sandbox.carrier_ports[slot],
            self.workdir / name,
            remote=f"127.0.0.1:{self.sandbox.sip_port}",
            service=did,
            trace_messages=False,
            **kw,
        )

    def _waiting_on(self, did: str) -> list[str]:
        line_id = self.line_ids[did]
        d = self.distributor
        return [
            call.channel_id
            for call in d.calls.values()
            if call.line_id == line_id and call.phase in ("waiting", "offered")
        ]

    async def _hangup_channels(self, channels: list[str]) -> None:
        client = self.runtime.state.supervisor.client
        for ch in channels:
            with contextlib.suppress(Exception):
                await client.channels.hangup(channelId=ch)

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

    def _phone_calls(self) -> int:
        """Calls the agent phones completed so far (answered, or cancelled while ringing)."""
        total = 0
        for ph in self.phones:
            st = sippkit.read_stats(ph.trace_dir / "stats.csv")
            total += int(st.get("SuccessfulCall(C)", "0") or 0)
        return total

    def _live(self) -> list[Any]:
        return list(self.distributor.calls.values())

    # ---- part 2
    async def load(self, prefix: str = "9180") -> None:
        """``prefix``: the callers' numbers (a new prefix per run when runs repeat)."""
        args = self.args
        await self.staff(DID_LOAD)
        agents = BenchAgents(self.distributor, self.hub, self.agent_ids, args.load_mode)
        agents.start()
        self.marks.t.clear()
        self.marks.rest.clear()
        self.marks.sync.clear()
        pid = self.sandbox.pid()
        assert pid is not None
        phone_pids = [ph.proc.pid for ph in self.phones if ph.proc]
        await asyncio.sleep(2.0)
        self.phone_calls_before_load = self._phone_calls()
        # idle CPU over 5 s, for reference
        i_cpu, i_ast, i_t = process_cpu_s(), asterisk_cpu_s(pid), time.monotonic()
        await asyncio.sleep(5.0)
        idle_s = time.monotonic() - i_t
        idle = {
            "process_ms_per_s": (process_cpu_s() - i_cpu) * 1000 / idle_s,
            "asterisk_ms_per_s": (asterisk_cpu_s(pid) - i_ast) * 1000 / idle_s,
        }
        lag = LoopLag(getattr(args, "lag_interval", 0.005))
        lag.start()
        self.spy_start("load")
        cpu0, ast0, t0 = process_cpu_s(), asterisk_cpu_s(pid), time.monotonic()
        phones0 = pids_cpu_s(phone_pids)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        caller = self._caller(
            f"load-{prefix}",
            DID_LOAD,
            2,
            prefix,
            (args.hold_min_ms, args.hold_max_ms),
            calls=args.load_calls,
            rate=args.load_rate,
            limit=args.load_calls,
        ).start()
        caller_pid = caller.proc.pid if caller.proc else None
        peak = {"waiting": 0, "live": 0}

        async def watch() -> None:
            while True:
                live = self._live()
                peak["live"] = max(peak["live"], len(live))
                peak["waiting"] = max(
                    peak["waiting"], sum(1 for x in live if x.phase in ("waiting", "offered"))
                )
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        sipp_cpu = 0.0
        timeout = args.load_calls / args.load_rate + args.hold_max_ms / 1000 * 4 + 60
        try:
            res = await asyncio.to_thread(caller.wait, timeout)
        finally:
            if caller_pid:
                ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the SIPp caller, reaped
                sipp_cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
        settle_started = time.monotonic()
        settled = True
        try:
            await until(
                lambda: (
                    not any(
                        x.phase != "ended" and x.line_id == self.line_ids[DID_LOAD]
                        for x in self._live()
                    )
                ),
                30,
                "load calls over",
            )
        except TimeoutError:
            settled = False
        wall = time.monotonic() - t0
        cpu = process_cpu_s() - cpu0
        self.spy_stop()
        ast = asterisk_cpu_s(pid) - ast0
        phones_cpu = pids_cpu_s(phone_pids) - phones0
        watcher.cancel()
        loop_lag = await lag.stop()
        await asyncio.sleep(1.0)  # the last cards are closed by the agents
        await agents.stop()
        n = args.load_calls
        out: dict[str, Any] = {
            "calls": n,
            "rate": args.load_rate,
            "hold_ms": [args.hold_min_ms, args.hold_max_ms],
            "agent_mode": args.load_mode,
            "wall_s": wall,
            "settle_s": time.monotonic() - settle_started,
            "settled": settled,
            "sipp": {
                "created": res.created,
                "ok": res.successful,
                "fail": res.failed,
                "exit": res.returncode,
            },
            "cpu": {
                "process_ms": cpu * 1000,
                "process_ms_per_call": cpu * 1000 / n,
                "asterisk_ms": ast * 1000,
                "asterisk_ms_per_call": ast * 1000 / n,
                "process_share_of_core": cpu / wall,
                "asterisk_share_of_core": ast / wall,
                "sipp_phones_ms": phones_cpu * 1000,
                "sipp_callers_ms_total": sipp_cpu * 1000,
                "idle": idle,
            },
            "loop_lag": loop_lag,
            "peak": peak,
            "agents": {
                "accepted": agents.accepted,
                "refused": dict(agents.refused),
                "re_readied": agents.re_readied,
                "views": agents.views,
            },
        }
        channels = [ch for ch, st in self.marks.t.items() if "start" in st]
        out["stages"] = {
            f"{a}->{b}": summary_ms(self.marks.deltas(channels, a, b))
            for a, b in [
                ("start", "arrived"),
                ("arrived", "offered"),
                ("offered", "accept"),
                ("accept", "orig"),
                ("orig", "orig_ok"),
            ]
        }
        out["rest"] = {k: summary_ms(v) for k, v in sorted(self.marks.rest.items())}
        out["sync"] = {k: summary_ms(v) for k, v in sorted(self.marks.sync.items())}
        out["check"] = await self.check_load(res, prefix)
        self.results["load"] = out

    async def check_load(self, res: sippkit.SippResult, prefix: str = "") -> dict[str, Any]:
        line_id = self.line_ids[DID_LOAD]
        ours = m.Call.caller_number.startswith(prefix)
        with transaction(self.sessions) as s:
            rows = s.scalars(select(m.Call).where(m.Call.line_id == line_id, ours)).all()
            states: dict[str, int] = defaultdict(int)
            for r in rows:
                states[r.state.value] += 1
            answered = [r for r in rows if r.state == m.CallState.ENDED and r.answered_at]
            ended_unanswered = sum(
                1 for r in rows if r.state == m.CallState.ENDED and not r.answered_at
            )
            missed_ids = {r.id for r in rows if r.state == m.CallState.MISSED}
            missed_rows = set(
                s.scalars(
                    select(m.MissedCall.call_id).where(m.MissedCall.call_id.in_(missed_ids))
                ).all()
            )
            agent_legs = s.scalar(
                select(func.count())
                .select_from(m.CallLeg)
                .join(m.Call, m.CallLeg.call_id == m.Call.id)
                .where(m.Call.line_id == line_id, ours, m.CallLeg.role == m.LegRole.AGENT)
            )
            callers = {r.caller_number for r in rows}
            waits = [
                (r.answered_at - r.queued_at).total_seconds()
                for r in answered
                if r.queued_at is not None
            ]
            missed_waits = [
                (r.ended_at - r.queued_at).total_seconds()
                for r in rows
                if r.state == m.CallState.MISSED and r.ended_at and r.queued_at
            ]
            end_reasons: dict[str, int] = defaultdict(int)
            for r in rows:
                end_reasons[r.end_reason or "-"] += 1
            per_agent: dict[int, int] = defaultdict(int)
            for r in answered:
                per_agent[r.agent_id] += 1
        channels = self.sandbox.rx("core show channels count")
        phone_answers = self._phone_calls() - self.phone_calls_before_load
        stuck = [
            (a.username, a.status.state.value)
            for a in self.distributor.agents.values()
            if a.status.state.value in ("offered", "busy")
        ]
        good_states = states.get("ended", 0) + states.get("missed", 0)
        out = {
            "db_calls": len(rows),
            "distinct_callers": len(callers),
            "states": dict(states),
            "answered": len(answered),
            "ended_unanswered": ended_unanswered,
            "missed_without_record": len(missed_ids - missed_rows),
            "agent_legs": agent_legs,
            "end_reasons": dict(end_reasons),
            "answer_wait": summary_ms(waits),
            "missed_wait": summary_ms(missed_waits),
            "calls_per_agent": sorted(per_agent.values()),
            "asterisk_channels": channels.strip().splitlines(),
            "agent_phone_calls": phone_answers,
            "agents_stuck": stuck,
            "sipp_created": res.created,
        }
        out["ok"] = (
            len(rows) == res.created == self.args.load_calls
            and good_states == len(rows)
            and not (missed_ids - missed_rows)
            and res.failed == 0
            and not stuck
            and ended_unanswered == 0
            and channels.strip().startswith("0 active channels")
        )
        return out


# ---------------------------------------------------------------------------- report


_GENERIC = ("asyncio/", "<frozen runpy>", "selectors.py", "(bench/inbound_bench.py)", "(<string>)")


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
        f"Date: {results['date']}. Command: `{command}` (`bench/inbound_bench.py`; "
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
        description=__doc__,
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


if __name__ == "__main__":
    sys.exit(main())
