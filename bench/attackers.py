"""Loopback attackers for ``bench.isolation_bench`` (issue #12), one kind per process.

    python -m bench.attackers login     --port WEB --rate 200 --seconds 40 --out a.json
    python -m bench.attackers slowloris --port WEB --count 2000 --seconds 40 --out a.json
    python -m bench.attackers agi       --port AGI --count 1000 --seconds 40 --out a.json
    python -m bench.attackers sse       --port WEB --count 500 --seconds 40 --out a.json \
        --username watcher --password ...

Every kind talks to 127.0.0.1 only, is bounded in count and in time (``--seconds``), and
writes what it saw (answers by status, connections cut by the server, ...) as JSON.

* ``login``: ``--rate`` ``POST /api/login`` per second with unknown usernames and wrong
  passwords, each on its own connection (at most ``--count`` in flight).
* ``slowloris``: keeps ``--count`` connections that sent half a request header, one
  more header byte every 5 s; reopens the ones the server closes.
* ``agi``: keeps ``--count`` FastAGI sessions that sent their environment (route ``ping``)
  and never answer the first command; reopens the ones the server closes.
* ``sse``: logs in once and keeps ``--count`` ``GET /api/events`` streams open, reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import signal
import sys
import time
from collections import Counter

HOST = "127.0.0.1"
_STOP = [0.0]  # monotonic time to stop; SIGTERM sets it to now (the results are still written)


def running() -> bool:
    return time.monotonic() < _STOP[0]


def lift_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 65536), hard))


class Stats:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: list[float] = []
        self.started = time.monotonic()

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


async def _request(port: int, raw: bytes, timeout: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        return status, head
    finally:
        writer.close()


def _login_request(username: str, password: str) -> bytes:
    body = json.dumps({"username": username, "password": password}).encode()
    return (
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


async def login_flood(args: argparse.Namespace, stats: Stats, stop: float) -> None:
    in_flight: set[asyncio.Task] = set()
    latencies: list[float] = []

    async def one(n: int) -> None:
        t0 = time.monotonic()
        try:
            status, _ = await _request(
                args.port, _login_request(f"nobody{n}x{random.randrange(10**6)}", "wrong-pw!"), 30
            )
            stats.add(f"status_{status}")
            latencies.append(time.monotonic() - t0)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            stats.add(f"error_{type(exc).__name__}")

    n = 0
    interval = 1.0 / args.rate
    next_at = time.monotonic()
    while running():
        if len(in_flight) < args.count:
            n += 1
            task = asyncio.create_task(one(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        else:
            stats.add("skipped_in_flight_cap")
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    stats.add("sent", n)
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    latencies.sort()
    if latencies:
        stats.counts["answer_ms_p50"] = int(latencies[len(latencies) // 2] * 1000)
        stats.counts["answer_ms_max"] = int(latencies[-1] * 1000)


async def keep_open(args: argparse.Namespace, stats: Stats, stop: float, opener, name: str) -> None:
    """Keep ``args.count`` connections made by ``opener`` open until ``stop``."""

    async def slot() -> None:
        while running():
            try:
                reader, writer = await asyncio.wait_for(opener(), 10)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                stats.add(f"open_failed_{type(exc).__name__}")
                await asyncio.sleep(0.5)
                continue
            stats.add("opened")
            try:
                while running():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 5)
                    except TimeoutError:
                        if name == "slowloris":  # one more header byte now and then
                            writer.write(b"a")
                            await writer.drain()
                        continue
                    if not data:
                        stats.add("closed_by_server")
                        break
                    stats.add("bytes_read", len(data))
            except (OSError, ConnectionError):
                stats.add("reset_by_server")
            finally:
                writer.close()

    # open them in waves of 100 so the listen backlog is not the limit
    tasks = []
    for i in range(args.count):
        tasks.append(asyncio.create_task(slot()))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.wait(tasks, timeout=max(1.0, _STOP[0] - time.monotonic() + 15))


async def slowloris(args: argparse.Namespace, stats: Stats, stop: float) -> None:
    async def opener():
        reader, writer = await asyncio.open_connection(HOST, args.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        return reader, writer

    await keep_open(args, stats, stop, opener, "slowloris")


AGI_ENV = (
    b"agi_network: yes\nagi_network_script: ping\nagi_channel: PJSIP/stall-00000001\n"
    b"agi_uniqueid: 1730000000.9\nagi_callerid: 4791234567\n\n"
)


async def agi_stall(args: argparse.Namespace, stats: Stats, stop: float) -> None:
    async def opener():
        reader, writer = await asyncio.open_connection(HOST, args.port)
        writer.write(AGI_ENV)
        await writer.drain()
        return reader, writer

    await keep_open(args, stats, stop, opener, "agi")


async def sse_streams(args: argparse.Namespace, stats: Stats, stop: float) -> None:
    status, head = await _request(args.port, _login_request(args.username, args.password), 30)
    if status != 200:
        raise SystemExit(f"sse: login as {args.username} answered {status}")
    cookie = next(
        line.split(b":", 1)[1].split(b";", 1)[0].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"set-cookie:")
    )
    request = (
        b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        b"Cookie: " + cookie + b"\r\n\r\n"
    )

    async def opener():
        reader, writer = await asyncio.open_connection(HOST, args.port)
        writer.write(request)
        await writer.drain()
        return reader, writer

    await keep_open(args, stats, stop, opener, "sse")


async def agi_probe(args: argparse.Namespace, stats: Stats, stop: float) -> None:
    """Not an attack: a FastAGI ``ping`` session played as Asterisk every 100 ms; the
    round trips (ms) go to ``stats.samples``."""
    while running():
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, args.port), 30)
            writer.write(AGI_ENV)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            if line.startswith(b"SET VARIABLE"):
                writer.write(b"200 result=1\n")
                await writer.drain()
                await asyncio.wait_for(reader.read(), 30)
                stats.samples.append(round((time.monotonic() - t0) * 1000, 2))
            else:
                stats.add("bad_answer")
            writer.close()
        except (TimeoutError, OSError) as exc:
            stats.add(f"error_{type(exc).__name__}")
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))


KINDS = {
    "login": login_flood,
    "slowloris": slowloris,
    "agi": agi_stall,
    "sse": sse_streams,
    "agiprobe": agi_probe,
}


async def amain(args: argparse.Namespace) -> dict:
    stats = Stats()
    _STOP[0] = stop = time.monotonic() + args.seconds
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: _STOP.__setitem__(0, time.monotonic())
    )
    with contextlib.suppress(asyncio.CancelledError):
        await KINDS[args.kind](args, stats, stop)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"kind": args.kind, "seconds": round(time.monotonic() - stats.started, 1)}
    out["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    out |= dict(stats.counts)
    if stats.samples:
        out["samples_ms"] = stats.samples
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.attackers", description=__doc__)
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000, help="connections / in flight (cap)")
    ap.add_argument("--rate", type=float, default=200.0, help="login: requests per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--username", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 600 or not 0 < args.count <= 5000 or not 0 < args.rate <= 1000:
        ap.error("--seconds 1-600, --count 1-5000, --rate 1-1000")
    lift_fd_limit()
    result = asyncio.run(amain(args))
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
