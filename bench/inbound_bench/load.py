"""Part 2, load (see the package doc): SIPp callers at a rate, checked afterwards."""

from __future__ import annotations

import asyncio
import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from bench.inbound_bench.agents import BenchAgents
from bench.inbound_bench.common import (
    DID_LOAD,
    sippkit,
    summary_ms,
    until,
)
from bench.inbound_bench.measure import (
    LoopLag,
    asterisk_cpu_s,
    pids_cpu_s,
    process_cpu_s,
)


class LoadPart:
    """``Bench``'s load part (its attributes are the harness's)."""

    args: Any
    sandbox: Any
    workdir: Path
    runtime: Any

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
