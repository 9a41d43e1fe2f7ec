"""Live panel fan-out: events/s from the hub (AMI + app) to N connected SSE clients and the
end-to-end lag, on real uvicorn over loopback.

    python -m bench.panel_bench                 # full run (~2 min)
    python -m bench.panel_bench --quick         # 3 s per phase
    python -m bench.panel_bench --help

Two processes:

* the **server** (this module, ``serve`` sub-command, started by the bench): the panel
  exactly as ``serve`` mounts it (``desktop_mount`` + ``web.panel.Panel`` routes, the
  ``PanelFeed`` component, one ``EventHub``) around a real ``Distributor`` on SQLite
  (10 lines, 50 agents, 25 of them logged in and paused) and an ``AmiMonitor`` that is fed
  AMI events in-process (no Asterisk; ``on_event`` is what panoramisk calls). A small bench
  route starts the event generator: ``rate`` events/s for ``duration`` seconds, of which
  ``app_share`` are distributor operations (a call arrives / a caller leaves: SQLite write,
  ``PanelChanged``) and the rest AMI events (device state changes of the 50 agent phones,
  channels created and hung up: ``AmiChanged``). Every hub event carries its publish time.
* the **clients** (the bench's own process): N ``httpx`` streaming clients, each logged in
  (own session cookie) on ``GET /panel/events``, parsing every SSE message. For each patch:
  receipt time minus ``ts`` (publish time of the *oldest* event the patch covers, so a
  coalesced burst counts at its worst) = end-to-end lag; ``n`` = source events it covers.

Phases (same server, same run): the raw hub baseline (one in-process subscriber, events
published as fast as possible), then 1 client, then N clients at several rates, then N
clients with coalescing off (``min_interval`` 0: a patch per loop wake-up).

"events/s to clients" = sum over clients of the source events their patches covered per
second of the phase (N x rate when every client keeps up); "messages/s" = SSE patches
written per second over all clients. CPU: the server process's CPU seconds per phase.
Results: JSON + a markdown table on stdout (``--json``, ``--markdown`` to write files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

N_LINES = 10
N_AGENTS = 50
PASSWORD = "bench-supervisor-1"


# ================================================================= the server process


def build_world(path: Path):
    from argon2 import PasswordHasher
    from sqlalchemy import select

    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
    from asterisk_cube.services import provisioning as p

    url = f"sqlite:///{path / 'bench.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with transaction(sessions) as s:
        dids = [f"47210{i:05d}" for i in range(N_LINES)]
        for i, did in enumerate(dids):
            p.add_line(s, did, f"Line {i + 1}", priority=i % 3)
        for i in range(N_AGENTS):
            p.add_agent(
                s,
                f"bench{i + 1:02d}",
                name=f"Agent {i + 1:02d}",
                endpoint=f"PJSIP/bench{i + 1:02d}",
                lines=dids[: 1 + i % N_LINES],
            )
        boss = m.Agent(
            username="boss",
            name="Bench Supervisor",
            role=m.Role.SUPERVISOR,
            password_hash=cheap.hash(PASSWORD),
        )
        s.add(boss)
        lines = [ln.id for ln in s.scalars(select(m.Line).order_by(m.Line.id))]
        agents = [a.id for a in s.scalars(select(m.Agent).where(m.Agent.role == m.Role.AGENT))]
    return sessions, lines, agents


class Generator:
    """Publishes the event mix at a rate (in the server's loop)."""

    def __init__(self, desk, ami, lines, agents) -> None:
        self.desk, self.ami, self.lines, self.agents = desk, ami, lines, agents
        self.rng = random.Random(7)
        self.serial = 0
        self.waiting: list[str] = []
        self.channels: list[str] = []
        self.device_state: dict[str, str] = {}

    def app_event(self) -> None:
        self.serial += 1
        if len(self.waiting) >= 20 or (self.waiting and self.rng.random() < 0.5):
            self.desk.caller_left(self.waiting.pop(0))
        else:
            channel = f"bench-{self.serial}"
            line = self.rng.choice(self.lines)
            self.desk.call_arrived(channel, line, f"+4791{self.serial:06d}")
            self.waiting.append(channel)

    def ami_event(self) -> None:
        self.serial += 1
        x = self.rng.random()
        if x < 0.5:
            device = f"PJSIP/bench{self.rng.randrange(1, N_AGENTS + 1):02d}"
            state = "INUSE" if self.device_state.get(device) != "INUSE" else "NOT_INUSE"
            self.device_state[device] = state
            self.ami.on_event({"Event": "DeviceStateChange", "Device": device, "State": state})
        elif x < 0.75 or not self.channels:
            uid = f"bench.{self.serial}"
            agent = self.rng.randrange(1, N_AGENTS + 1)
            self.ami.on_event(
                {
                    "Event": "Newchannel",
                    "Uniqueid": uid,
                    "Channel": f"PJSIP/bench{agent:02d}-{self.serial:08x}",
                    "ChannelStateDesc": "Ring",
                    "CallerIDNum": f"+4792{self.serial:06d}",
                }
            )
            self.channels.append(uid)
            if len(self.channels) > 100:
                self.ami.on_event({"Event": "Hangup", "Uniqueid": self.channels.pop(0)})
        else:
            self.ami.on_event({"Event": "Hangup", "Uniqueid": self.channels.pop(0)})

    async def run(self, rate: float, duration: float, app_share: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        cpu0 = time.process_time()
        sent = app = 0
        while True:
            elapsed = loop.time() - started
            if elapsed >= duration:
                break
            due = int(rate * elapsed) - sent
            for _ in range(due):
                if self.rng.random() < app_share:
                    self.app_event()
                    app += 1
                else:
                    self.ami_event()
                sent += 1
            await asyncio.sleep(0.005)
        return {
            "events": sent,
            "app_events": app,
            "seconds": loop.time() - started,
            "server_cpu_s": time.process_time() - cpu0,
        }


async def hub_baseline(count: int) -> dict[str, Any]:
    """One in-process subscriber, events published as fast as possible (no web)."""
    from asterisk_cube.ami.model import AmiChanged
    from asterisk_cube.events import EventHub

    hub = EventHub()
    sub = hub.subscribe(AmiChanged, maxsize=count + 1)
    lags = []
    t0 = time.perf_counter()
    for i in range(count):
        hub.publish(AmiChanged(what="device", key=str(i)))
    while (event := sub.get_nowait()) is not None:
        lags.append(time.time() - event.ts)
    seconds = time.perf_counter() - t0
    # the same through an awaiting reader, one event at a time (the feed's pattern)
    sub2 = hub.subscribe(AmiChanged, maxsize=64)
    received = 0

    async def reader():
        nonlocal received
        while received < count:
            await sub2.get()
            received += 1

    task = asyncio.create_task(reader())
    t1 = time.perf_counter()
    for i in range(count):
        hub.publish(AmiChanged(what="device", key=str(i)))
        if i % 32 == 31:
            await asyncio.sleep(0)
    await task
    seconds2 = time.perf_counter() - t1
    return {
        "events": count,
        "events_per_s_batch": round(count / seconds),
        "events_per_s_awaited": round(count / seconds2),
    }


async def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asterisk_cube.acd.distributor import Distributor
    from asterisk_cube.ami.monitor import AmiMonitor
    from asterisk_cube.config import AmiSettings, Settings
    from asterisk_cube.events import EventHub
    from asterisk_cube.logs import configure
    from asterisk_cube.web.app import create_app
    from asterisk_cube.web.desktop import desktop_mount
    from asterisk_cube.web.panel import Panel
    from asterisk_cube.web.panel_feed import PanelFeed

    configure("WARNING")
    path = Path(args.workdir)
    sessions, lines, agents = build_world(path)
    hub = EventHub()
    desk = Distributor(sessions, hub)
    desk.load()
    for agent_id in agents[: N_AGENTS // 2]:
        await desk.login(agent_id)  # paused "login": shown, never offered calls
    ami = AmiMonitor(AmiSettings(), hub)
    ami.connected = ami.synced = True
    ami.stale_since = None
    feed = PanelFeed(hub, desk, ami, min_interval=args.min_interval)
    gen = Generator(desk, ami, lines, agents)

    async def bench_run(request: Request):
        body = await request.json()
        feed.min_interval = float(body.get("min_interval", args.min_interval))
        events_before = feed.events_in
        result = await gen.run(body["rate"], body["duration"], body["app_share"])
        await asyncio.sleep(0.3)  # let the last patches go out
        result.update(
            hub_events=feed.events_in - events_before,
            clients=len(feed.clients),
            patches=feed.patches_sent,
            resyncs=sum(c.resyncs for c in feed.clients),
        )
        return JSONResponse(result)

    async def bench_hub(request: Request):
        return JSONResponse(await hub_baseline(int(request.query_params.get("count", 200000))))

    async def bench_clients(request: Request):
        return JSONResponse({"clients": len(feed.clients)})

    settings = Settings(data_dir=path)
    panel = Panel(feed, desk, sessions)
    mount = desktop_mount(settings, desk, hub, sessions, extra_routes=panel.routes())
    routes = [
        Route("/bench/run", bench_run, methods=["POST"]),
        Route("/bench/hub", bench_hub, methods=["GET"]),
        Route("/bench/clients", bench_clients, methods=["GET"]),
        mount,
    ]
    state = SimpleNamespace(hub=hub, web=None)
    app = create_app(settings, state, extra_routes=routes)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    state.web = server
    feed_task = asyncio.create_task(feed.run())
    try:
        await server.serve()
    finally:
        feed_task.cancel()
        await desk.close()


# ================================================================= the client side


@dataclass
class ClientStats:
    patches: int = 0
    events: int = 0
    bytes: int = 0
    snapshots: int = 0
    lags: list[float] = field(default_factory=list)
    server_lags: list[float] = field(default_factory=list)  # publish -> patch written
    recording: bool = False


async def client_task(url: str, stats: ClientStats, ready: asyncio.Event, stop: asyncio.Event):
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        resp = await http.post("/api/login", json={"username": "boss", "password": PASSWORD})
        resp.raise_for_status()
        async with http.stream(
            "GET",
            "/panel/events",
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(30, read=None),
        ) as stream:
            event, data = "", ""
            async for line in stream.aiter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    now = time.time()
                    if event == "snapshot":
                        stats.snapshots += 1
                        ready.set()
                    elif event == "patch" and stats.recording:
                        msg = json.loads(data)
                        stats.patches += 1
                        stats.events += msg.get("n", 0)
                        stats.bytes += len(data)
                        if msg.get("ts"):
                            stats.lags.append(now - msg["ts"])
                            stats.server_lags.append(msg["now"] - msg["ts"])
                    event, data = "", ""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


async def phase(
    url: str, clients: int, rate: float, duration: float, app_share: float, min_interval: float
) -> dict[str, Any]:
    stats = [ClientStats() for _ in range(clients)]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = [
        asyncio.create_task(client_task(url, st, ev, stop))
        for st, ev in zip(stats, readies, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 60)
        async with httpx.AsyncClient(base_url=url, timeout=duration + 60) as control:
            for st in stats:
                st.recording = True
            cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
            result = (
                await control.post(
                    "/bench/run",
                    json={
                        "rate": rate,
                        "duration": duration,
                        "app_share": app_share,
                        "min_interval": min_interval,
                    },
                )
            ).json()
            client_cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
            for st in stats:
                st.recording = False
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds = result["seconds"]
    lags = [lag for st in stats for lag in st.lags]
    server_lags = [lag for st in stats[:1] for lag in st.server_lags]  # same for every client
    covered = sum(st.events for st in stats)
    return {
        "clients": clients,
        "rate": rate,
        "app_share": app_share,
        "min_interval": min_interval,
        "duration": round(seconds, 2),
        "source_events": result["events"],
        "source_events_per_s": round(result["events"] / seconds, 1),
        "events_to_clients_per_s": round(covered / seconds, 1),
        "hub_events": result["hub_events"],
        "delivered_share": round(covered / max(1, result["hub_events"] * clients), 4),
        "messages_per_s": round(sum(st.patches for st in stats) / seconds, 1),
        "mbytes_per_s": round(sum(st.bytes for st in stats) / seconds / 1e6, 3),
        "lag_p50_ms": round(pct(lags, 0.50) * 1000, 1),
        "lag_p99_ms": round(pct(lags, 0.99) * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
        "server_lag_p50_ms": round(pct(server_lags, 0.50) * 1000, 1),
        "server_lag_p99_ms": round(pct(server_lags, 0.99) * 1000, 1),
        "resyncs": result["resyncs"],
        "server_cpu_s": round(result["server_cpu_s"], 2),
        "server_cpu_share": round(result["server_cpu_s"] / seconds, 3),
        "client_cpu_s": round(client_cpu, 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": [round(x, 1) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> str:
    hub = results["hub"]
    out = [
        f"Machine: {results['machine']['cores']} cores ({results['machine']['cpu']}), "
        f"Python {results['machine']['python']}; load average at start "
        f"{results['machine']['load_avg']}.",
        "",
        f"Raw hub baseline (in-process, no web): {hub['events_per_s_batch']:,} events/s "
        f"published+drained in a batch, {hub['events_per_s_awaited']:,} events/s to an "
        "awaiting reader.",
        "",
        "| clients | source ev/s | app share | coalesce | hub events/s to clients | delivered "
        "| messages/s | MB/s | lag p50 ms | lag p99 ms | lag max ms | in server p50/p99 ms "
        "| resyncs | server CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["phases"]:
        out.append(
            f"| {r['clients']} | {r['source_events_per_s']:.0f} | {r['app_share']:.0%} | "
            f"{r['min_interval'] * 1000:.0f} ms | {r['events_to_clients_per_s']:,.0f} | "
            f"{r['delivered_share']:.1%} | {r['messages_per_s']:,.0f} | {r['mbytes_per_s']:.2f} | "
            f"{r['lag_p50_ms']} | {r['lag_p99_ms']} | {r['lag_max_ms']} | "
            f"{r['server_lag_p50_ms']} / {r['server_lag_p99_ms']} | {r['resyncs']} | "
            f"{r['server_cpu_share']:.0%} |"
        )
    return "\n".join(out) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="panel-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "bench.panel_bench",
        "serve",
        "--port",
        str(port),
        "--workdir",
        str(workdir),
    ]
    server = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1])
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "phases": []}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    (await http.get("/health")).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("bench server did not start") from None
                    await asyncio.sleep(0.2)
            results["hub"] = (await http.get("/bench/hub", params={"count": 200000})).json()
        d = args.duration
        share = args.app_share
        plan = [(1, args.rates[1], 0.05, share)]  # baseline: one client
        plan += [(args.clients, rate, 0.05, share) for rate in args.rates]
        plan += [(args.clients, args.rates[2], 0.05, 0.0)]  # AMI only: no SQLite writes
        plan += [(args.clients, args.rates[1], 0.0, share)]  # coalescing off
        for clients, rate, min_interval, app_share in plan:
            r = await phase(url, clients, rate, d, app_share, min_interval)
            results["phases"].append(r)
            print(json.dumps(r), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    srv = sub.add_parser("serve", help="(internal) the bench server")
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--workdir", required=True)
    srv.add_argument("--min-interval", type=float, default=0.05)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--rates",
        type=float,
        nargs=3,
        default=[100.0, 500.0, 2000.0],
        help="three source event rates (ev/s); the middle one is used for the baselines",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--app-share", type=float, default=0.1, help="share of app events")
    parser.add_argument("--quick", action="store_true", help="3 s per phase")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    args = parser.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args))
        return
    if args.quick:
        args.duration = 3.0
    results = asyncio.run(main_async(args))
    text = markdown(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
