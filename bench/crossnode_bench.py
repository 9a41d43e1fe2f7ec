"""StasisStart -> agent answered, local agent vs an agent on the other node (issue #14).

    python -m bench.crossnode_bench [--calls 40] [--base-port 34400] [--peer-base-port 56400]
                                    [--database-url postgresql+psycopg://...]

Needs root (the sandbox chroot) and SIPp. Two sandbox instances joined by the generated
trunk (as tests/integration/test_crossnode_trunk.py), a real `serve` beside each, one
database (default: a SQLite file both share; pass PostgreSQL with --database-url). On
node A, agent01's phone is a SIPp phone on A's Asterisk (``PJSIP/agent01``) and agent05's
on B's (``PJSIP/agent05@cube-node-b``: over the trunk, B's Stasis app rings and bridges
it). Both agents work at A's desk API (this process, over HTTP/SSE, accepting every offer
at once); each has its own line, and calls alternate between the lines, one at a time.
On PostgreSQL a third path, the **global queue**: agent06 works at B's desk with its phone
on B (``PJSIP/agent06@cube-node-b``); its line's callers arrive on A, wait (nobody on A
takes them), are announced, claimed by B from its mirror, offered at B's desk, and A rings
the phone over the trunk when B says the agent accepted (docs/architecture.md).
Per call:

  db      ``calls.answered_at - calls.queued_at`` (A's clock): StasisStart of the caller
          to the agent's leg answered and bridged with it (includes the offer's push to
          the desk and its accept, the same for both paths)
  ring    accept sent -> the desk sees ``connected`` (the client's clock): the originate,
          the phone(s) ringing and answering, the bridge(s), the push

The phones answer at once (``answer_ms=0``). Printed as p50/p99/max per path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from asterisk_cube.db import models as m
from asterisk_cube.sandbox import SandboxInstance

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from agent_client import AgentClient  # noqa: E402  (the test suite's desk client)
from cubeproc import Serve  # noqa: E402
from sippkit import caller, phone  # noqa: E402

PASSWORD = "bench-password-1"
LOCAL, REMOTE, MIRRORED = "4721000031", "4721000032", "4721000033"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def node(inst: SandboxInstance, workdir: Path, url: str, name: str) -> Serve:
    workdir.mkdir(parents=True)
    srv = Serve.on_sandbox(inst, workdir)
    srv.env.update(
        ASTERISK_CUBE_DATABASE_URL=url,
        ASTERISK_CUBE_NODE_NAME=name,
        ASTERISK_CUBE_NODE_SIP_ADDRESS=inst.sip_address,
    )
    srv.cli("db", "upgrade")
    return srv


async def one_call(agent: AgentClient, a: SandboxInstance, did: str, n: int, tmp: Path):
    call = caller(a, did, tmp / f"c{n}", caller_id=f"9200{n:04d}", hold_ms=30000)
    async with agent.events() as events:
        call.start()
        view = await events.wait_for(lambda v: v["offer"], timeout=30)
        call_id = view["offer"]["call_id"]
        sent = time.monotonic()
        await agent.accept(call_id)
        await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "connected", 30)
        ring = time.monotonic() - sent
        await agent.hangup(call_id)
        await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "ended", 30)
    await agent.close_call(call_id)
    await asyncio.to_thread(call.wait, 30)
    return call_id, ring


async def run(args: argparse.Namespace) -> int:
    a = SandboxInstance(f"test-{args.base_port}", args.base_port)
    b = SandboxInstance(f"test-{args.peer_base_port}", args.peer_base_port)
    for inst in (a, b):
        inst.up(reset_dialplan=True)
    tmp = Path(tempfile.mkdtemp(prefix="crossnode-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'cube.db'}"
    na, nb = node(a, tmp / "a", url, "a"), node(b, tmp / "b", url, "b")
    na.cli("line", "add", LOCAL, "--name", "Local", "--offer-timeout", "20")
    na.cli("line", "add", REMOTE, "--name", "Remote", "--offer-timeout", "20")
    paths = [
        (LOCAL, "agent01", "PJSIP/agent01", na),
        (REMOTE, "agent05", "PJSIP/agent05@cube-node-b", na),
    ]
    if url.startswith("postgresql"):  # the global queue needs LISTEN/NOTIFY
        na.cli("line", "add", MIRRORED, "--name", "Mirrored", "--offer-timeout", "20")
        paths.append((MIRRORED, "agent06", "PJSIP/agent06@cube-node-b", nb))
    for did, user, endpoint, _ in paths:
        na.cli("agent", "add", user, "--endpoint", endpoint, "--password", PASSWORD, "--line", did)
    for srv in (na, nb, na):
        srv.cli("dialplan", "install")
    na.start()
    nb.start()
    agents = {did: AgentClient(srv.url) for did, _, _, srv in paths}
    ring: dict[str, list[float]] = {did: [] for did in agents}
    ids: dict[str, list[int]] = {did: [] for did in agents}
    try:
        for did, user, _, _ in paths:
            await agents[did].login(user, PASSWORD)
            view = await agents[did].start()
            await agents[did].choose_lines([ln["line_id"] for ln in view["lines"]])
            await agents[did].ready()
        with (
            phone(a, a.agent_port(1), tmp / "p1", answer_ms=0),
            phone(b, b.agent_port(5), tmp / "p5", answer_ms=0),
            phone(b, b.agent_port(6), tmp / "p6", answer_ms=0),
        ):
            for n in range(len(paths) * args.calls):
                did = paths[n % len(paths)][0]
                call_id, seconds = await one_call(agents[did], a, did, n, tmp)
                ids[did].append(call_id)
                ring[did].append(seconds)
    finally:
        for client in agents.values():
            await client.aclose()
        nb.stop()
        na.stop()
        if not args.keep:
            for inst in (a, b):
                inst.down()
    engine = create_engine(url)
    with engine.connect() as conn:
        query = select(m.Call.id, m.Call.answered_at, m.Call.queued_at)
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    engine.dispose()
    db_kind = url.split(":")[0]
    print(f"{args.calls} calls per path, one at a time, {os.cpu_count()} cores, db {db_kind}")
    labels = {
        LOCAL: "local (phone on A)",
        REMOTE: "cross-node (phone on B)",
        MIRRORED: "global queue (desk+phone B)",
    }
    for did, label in labels.items():
        if not ids.get(did):
            continue
        db = [(rows[i][0] - rows[i][1]).total_seconds() * 1000 for i in ids[did]]
        rg = [s * 1000 for s in ring[did]]
        print(
            f"{label:26} StasisStart->answered p50 {pct(db, 0.5):6.1f} p99 {pct(db, 0.99):6.1f} "
            f"max {max(db):6.1f} ms | accept->connected p50 {pct(rg, 0.5):6.1f} "
            f"p99 {pct(rg, 0.99):6.1f} mean {statistics.mean(rg):6.1f} ms"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per path")
    parser.add_argument("--base-port", type=int, default=34400)
    parser.add_argument("--peer-base-port", type=int, default=56400)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="leave the sandboxes running")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
