"""The distributor's own CPU per operation, in-process (no Asterisk, no web): what the
``acd`` split (issue #13) must not make slower.

    python -m bench.distributor_bench [--rounds 9]

A real ``Distributor`` on SQLite: 2 lines, 20 agents ready on the "probe" line, 50 callers
waiting on the "backlog" line nobody staffs (the routing core weighs them every time) and
10 probe calls offered. Per operation, the best of ``--rounds`` rounds of **process CPU
time** (``time.process_time``: on a shared machine wall time measures the neighbours):

* ``view``: one agent's desk view (``Distributor.view``, as the SSE push renders it);
* ``dispatch``: one ``dispatch()`` over the 60 waiting/offered calls and 20 agents;
* ``panel_snapshot``: the supervisors' panel snapshot;
* ``arrive+leave``: a caller arrives on the backlog line and hangs up (``call_arrived`` +
  ``channel_left``: classify, queue, journal writes, missed call).

To compare two trees, run it from each (``cd <tree> && python -m bench.distributor_bench``),
interleaved, a few times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable

from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

N_AGENTS, N_BACKLOG, N_OFFERED = 20, 50, 10


class Telephony:
    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        return f"agent-{call_id}"

    async def hangup(self, channel_id):
        pass

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here

    async def release(self, call_id, channels):
        pass


def best_of(rounds: int, reps: int, fn: Callable[[], object]) -> float:
    """ms of process CPU per call, best round."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - started) / reps)
    return best * 1e3


async def run(rounds: int) -> dict[str, float]:
    url = f"sqlite:///{tempfile.mkdtemp(prefix='distributor-bench-')}/cube.db"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_line(s, "100", "Probe", priority=5)
        p.add_line(s, "200", "Backlog", priority=1)
        for i in range(N_AGENTS):
            p.add_agent(s, f"a{i}", endpoint=f"PJSIP/a{i}", lines=["100", "200"])
        agents = [a.id for a in s.scalars(select(m.Agent))]
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    d = Distributor(sessions, EventHub(), Telephony())
    d.load()
    for agent in agents:
        await d.login(agent)
        await d.choose_lines(agent, [lines["100"]])
        await d.ready(agent)
    for i in range(N_BACKLOG):
        d.call_arrived(f"backlog-{i}", lines["200"], f"+4791{i:06d}")
    for i in range(N_OFFERED):
        d.call_arrived(f"probe-{i}", lines["100"], f"+4792{i:06d}")
    await asyncio.sleep(0.1)

    def view_all() -> None:
        for agent in agents:
            with contextlib.suppress(StopIteration):  # view never awaits: done at once
                d.view(agent).send(None)

    arrivals = iter(range(10**9))

    def arrive_and_leave() -> None:
        i = next(arrivals)
        d.call_arrived(f"x-{i}", lines["200"], f"+4793{i % 10**6:06d}")
        d.channel_left(f"x-{i}")

    result = {
        "view": best_of(rounds, 20, view_all) / len(agents),
        "dispatch": best_of(rounds, 200, d.dispatch),
        "panel_snapshot": best_of(rounds, 200, d.panel_snapshot),
        "arrive+leave": best_of(rounds, 100, arrive_and_leave),
    }
    await d.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.distributor_bench", description=__doc__)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    result = asyncio.run(run(args.rounds))
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
