"""Which ARI client stack costs least CPU (issue #19, docs/decisions.md "ARI client").

    python -m bench.ari_client_bench --url http://127.0.0.1:43288 [--n 2000]

Against a running Asterisk (e.g. a sandbox instance: ``asterisk-cube sandbox up``), each
stack in turn, in this process, alternating ``--rounds`` times:

* ``rest``: ``--n`` sequential ``POST /channels``-shaped requests that Asterisk answers at
  once (``GET /asterisk/info`` and ``POST /events/user/bench`` with query parameters);
* ``event``: ``--n`` round trips of a user event: ``POST /events/user/bench?application=X``
  and the websocket frame Asterisk sends back, decoded into a dict.

CPU per request / per event round trip (``time.process_time``, this process only) and
wall time. Stacks: ``asyncari`` (public API only: ``asyncari.connect``,
``client.asterisk.getInfo``, ``client.events.userEvent``, ``async for`` over the client),
``httpx+websockets`` (one ``httpx.AsyncClient`` and a ``websockets`` connection) and
``aiohttp`` (one ``ClientSession`` for both). asyncari is no longer a dependency: a stack
whose library is not installed is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

APP = "bench-client"


async def _aiohttp(url: str, user: str, password: str, n: int) -> dict[str, float]:
    import aiohttp

    headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    async with aiohttp.ClientSession(url, headers=headers) as http:
        ws = await http.ws_connect("/ari/events", params={"app": APP})

        async def rest(method: str, path: str, **params: str) -> Any:
            async with http.request(method, "/ari/" + path, params=params) as r:
                return await r.read()

        async def event() -> dict:
            msg = await ws.receive()
            return json.loads(msg.data)

        out = await _measure(rest, event, n)
        await ws.close()
        return out


async def _httpx_websockets(url: str, user: str, password: str, n: int) -> dict[str, float]:
    import httpx
    import websockets

    async with httpx.AsyncClient(base_url=url, auth=(user, password)) as http:
        ws_url = url.replace("http", "ws", 1) + f"/ari/events?app={APP}"
        import base64

        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Basic {token}"}
        ) as ws:

            async def rest(method: str, path: str, **params: str) -> Any:
                r = await http.request(method, "/ari/" + path, params=params)
                return r.content

            async def event() -> dict:
                return json.loads(await ws.recv())

            return await _measure(rest, event, n)


async def _asyncari(url: str, user: str, password: str, n: int) -> dict[str, float]:
    import asyncari  # no longer a dependency: pip install asyncari to compare

    async with asyncari.connect(url, APP, user, password) as client:
        events = client.__aiter__()

        async def rest(method: str, path: str, **params: str) -> Any:
            if path == "asterisk/info":
                return await client.asterisk.getInfo()
            return await client.events.userEvent(eventName="bench", **params)

        async def event() -> Any:
            return await events.__anext__()

        return await _measure(rest, event, n)


async def _measure(rest: Any, event: Any, n: int) -> dict[str, float]:
    for _ in range(20):  # warm up the pool
        await rest("GET", "asterisk/info")
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await rest("GET", "asterisk/info")
    c1, t1 = time.process_time(), time.perf_counter()
    for i in range(n):
        await rest("POST", "events/user/bench", application=APP)
        await event()
        del i
    c2, t2 = time.process_time(), time.perf_counter()
    return {
        "rest_cpu_ms": (c1 - c0) * 1000 / n,
        "rest_wall_ms": (t1 - t0) * 1000 / n,
        "event_rt_cpu_ms": (c2 - c1) * 1000 / n,
        "event_rt_wall_ms": (t2 - t1) * 1000 / n,
    }


STACKS = {"asyncari": _asyncari, "httpx+websockets": _httpx_websockets, "aiohttp": _aiohttp}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ari_client_bench", description=__doc__)
    ap.add_argument("--url", required=True, help="http://host:port of Asterisk's HTTP server")
    ap.add_argument("--user", default="asterisk-cube")
    ap.add_argument("--password", default="asterisk-cube")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stacks", default=",".join(STACKS))
    args = ap.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for name in args.stacks.split(","):
            with contextlib.suppress(ImportError):
                stack = STACKS[name](args.url.rstrip("/"), args.user, args.password, args.n)
                r = asyncio.run(stack)
                results.setdefault(name, []).append(r)
                print(name, {k: round(v, 3) for k, v in r.items()}, flush=True)
    print("\n| stack | REST CPU ms/req | REST wall ms | user event round trip CPU ms | wall ms |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        mean = {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}
        print(
            f"| {name} | {mean['rest_cpu_ms']:.3f} | {mean['rest_wall_ms']:.3f} | "
            f"{mean['event_rt_cpu_ms']:.3f} | {mean['event_rt_wall_ms']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
