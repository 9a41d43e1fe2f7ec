"""What the inbound bench measures beside the calls: per-stage timestamps by wrapping
(never editing) product objects, CPU time and event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from asterisk_cube.ari.supervisor import event_json, event_type
from bench.inbound_bench.common import (
    summary_ms,
)

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
