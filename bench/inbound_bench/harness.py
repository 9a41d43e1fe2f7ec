"""The inbound bench's harness: sandbox, database, runtime and agents (``Bench``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from asterisk_cube import dialplan as dp
from asterisk_cube.acd import contract as c
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime
from bench.inbound_bench.common import (
    DID_BACKLOG,
    DID_LOAD,
    DID_PROBE,
    N_AGENTS,
    sippkit,
    uac_scenario,
    until,
)
from bench.inbound_bench.latency import LatencyPart
from bench.inbound_bench.load import LoadPart
from bench.inbound_bench.measure import (
    Marks,
    instrument,
)


# ---------------------------------------------------------------------------- the harness
class Bench(LatencyPart, LoadPart):
    """The harness: the sandbox, the runtime in-process, the agents; the two parts are
    ``latency.LatencyPart`` and ``load.LoadPart``."""

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
