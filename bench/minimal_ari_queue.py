"""A minimal ARI queue: the baseline the product's inbound path is measured against (#19).

    python -m bench.minimal_ari_queue --url http://127.0.0.1:8088 --user u --password p \\
        --app bench-minimal --agents PJSIP/agent01,PJSIP/agent02 --stats out.json

No product code, no database, no logging: plain HTTP and a websocket (aiohttp, one
connection pool), JSON decoded once per event. What it does, and nothing more:

* one holding bridge with music on hold, created at start;
* a caller (``StasisStart`` with args ``caller``) is answered and put in it, FIFO;
* the least recently freed agent (a deque of endpoints) is rung by ``POST /channels``
  into this app (args ``agent``); when the agent's leg enters the app the caller leaves
  the holding bridge and both go into a new mixing bridge;
* whoever hangs up first, the other leg is hung up and the mixing bridge destroyed; the
  agent is free again once its leg has left the app. A caller who hangs up while the
  agent rings stops the ring; a ring that fails puts the caller back at the head of the
  queue and the agent at the tail.

REST requests per answered call: answer, add to holding, originate, create bridge,
remove from holding, add both, hang up the other leg, destroy the bridge (8), the same
as the product's call path needs (docs/benchmarks.md, "Requests per call").

On SIGTERM/SIGINT it writes ``--stats``: calls seen, answered (bridged), REST requests,
and per bridged call StasisStart -> originate answered by Asterisk (seconds, monotonic
from the websocket frame's arrival to the ``POST /channels`` response).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import time
from collections import deque

import aiohttp

HOLD = "bmq-hold"


class MinimalQueue:
    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession) -> None:
        self.args = args
        self.http = session
        self.free: deque[str] = deque(args.agents.split(","))
        self.waiting: deque[str] = deque()
        self.started: dict[str, float] = {}  # caller -> StasisStart seen at
        self.ringing: dict[str, tuple[str, str]] = {}  # agent leg -> (caller, endpoint)
        self.peer: dict[str, str] = {}  # caller <-> agent leg, once bridged
        self.bridge_of: dict[str, str] = {}  # caller -> mixing bridge
        self.endpoint_of: dict[str, str] = {}  # agent leg -> endpoint
        self.latency: list[float] = []
        self.calls = 0
        self.bridged = 0
        self.requests = 0
        self.ids = itertools.count(1)
        self.tasks: set[asyncio.Task] = set()

    async def rest(self, method: str, path: str, **params: str) -> int:
        self.requests += 1
        async with self.http.request(method, "/ari/" + path, params=params) as r:
            await r.read()
            return r.status

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ------------------------------------------------------------------ events
    def on_event(self, ev: dict, at: float) -> None:
        etype = ev.get("type")
        channel = (ev.get("channel") or {}).get("id", "")
        if etype == "StasisStart":
            args = ev.get("args") or []
            if args[:1] == ["caller"]:
                self.calls += 1
                self.started[channel] = at
                self.spawn(self.caller_arrived(channel))
            elif args[:1] == ["agent"]:
                self.spawn(self.agent_answered(channel))
        elif etype == "StasisEnd":
            self.left(channel)
        elif etype == "ChannelDestroyed" and channel in self.ringing:
            caller, endpoint = self.ringing.pop(channel)  # the ring failed: no StasisStart
            self.endpoint_of.pop(channel, None)
            self.free.append(endpoint)
            if caller in self.started:
                self.waiting.appendleft(caller)
            self.dispatch()

    async def caller_arrived(self, caller: str) -> None:
        await self.rest("POST", f"channels/{caller}/answer")
        await self.rest("POST", f"bridges/{HOLD}/addChannel", channel=caller)
        self.waiting.append(caller)
        self.dispatch()

    def dispatch(self) -> None:
        while self.waiting and self.free:
            caller, endpoint = self.waiting.popleft(), self.free.popleft()
            leg = f"bmq-a-{next(self.ids)}"
            self.ringing[leg] = (caller, endpoint)
            self.endpoint_of[leg] = endpoint
            self.spawn(self.ring(caller, leg, endpoint))

    async def ring(self, caller: str, leg: str, endpoint: str) -> None:
        status = await self.rest(
            "POST",
            "channels",
            endpoint=endpoint,
            app=self.args.app,
            appArgs="agent",
            channelId=leg,
            timeout="15",
        )
        if status < 300 and caller in self.started:
            self.latency.append(time.monotonic() - self.started[caller])

    async def agent_answered(self, leg: str) -> None:
        caller, _ = self.ringing.pop(leg, ("", ""))
        if caller not in self.started:  # the caller left while the agent rang
            await self.rest("DELETE", f"channels/{leg}")
            return
        self.started.pop(caller, None)
        bridge = f"bmq-b-{leg}"
        self.peer[caller], self.peer[leg] = leg, caller
        self.bridge_of[caller] = bridge
        await self.rest("POST", f"bridges/{bridge}", type="mixing")
        await self.rest("POST", f"bridges/{HOLD}/removeChannel", channel=caller)
        await self.rest("POST", f"bridges/{bridge}/addChannel", channel=f"{caller},{leg}")
        self.bridged += 1

    def left(self, channel: str) -> None:
        if channel in self.started:  # a caller not yet bridged
            self.started.pop(channel)
            if channel in self.waiting:
                self.waiting.remove(channel)
            for leg, (caller, _) in list(self.ringing.items()):
                if caller == channel:
                    self.spawn(self.rest("DELETE", f"channels/{leg}"))
            return
        other = self.peer.pop(channel, None)
        if other is not None:
            self.peer.pop(other, None)
            self.spawn(self.rest("DELETE", f"channels/{other}"))
            caller = channel if channel in self.bridge_of else other
            bridge = self.bridge_of.pop(caller, None)
            if bridge:
                self.spawn(self.rest("DELETE", f"bridges/{bridge}"))
        endpoint = self.endpoint_of.pop(channel, None)
        if endpoint is not None and channel not in self.ringing:
            self.free.append(endpoint)
            self.dispatch()

    def stats(self) -> dict:
        return {
            "calls": self.calls,
            "bridged": self.bridged,
            "requests": self.requests,
            "stasis_start_to_originate_answered_s": self.latency,
        }


async def main_async(args: argparse.Namespace) -> None:
    auth = {"Authorization": aiohttp.encode_basic_auth(args.user, args.password)}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession(args.url, headers=auth) as session:
        q = MinimalQueue(args, session)
        ws = await session.ws_connect("/ari/events", params={"app": args.app})
        await q.rest("POST", f"bridges/{HOLD}", type="holding")
        await q.rest("POST", f"bridges/{HOLD}/moh", mohClass="default")
        print("ready", flush=True)

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    q.on_event(json.loads(msg.data), time.monotonic())

        reader = asyncio.create_task(read())
        await stop.wait()
        reader.cancel()
        await q.rest("DELETE", f"bridges/{HOLD}")
        await ws.close()
        with open(args.stats, "w") as f:
            json.dump(q.stats(), f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.minimal_ari_queue", description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--app", default="bench-minimal")
    ap.add_argument("--agents", required=True, help="comma-separated endpoints")
    ap.add_argument("--stats", required=True, help="JSON written on SIGTERM")
    asyncio.run(main_async(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
