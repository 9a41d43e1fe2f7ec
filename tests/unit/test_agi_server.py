"""FastAGI server: protocol handling with a fake Asterisk on a real localhost socket, and the
guard against peers that close (or dawdle) before the end of the AGI environment.

panoramisk's own handler spins on empty reads when a peer closes before the blank line that
ends the environment, freezing the event loop at 100% CPU. The guard tests run the server in
a loop on a separate thread and watch a ticker coroutine in that loop from the test thread:
against the unguarded handler the ticker stops and the test fails (instead of hanging).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest

from asterisk_cube.agi.server import AgiServer
from asterisk_cube.agi.session import (
    AgiError,
    AgiSession,
    parse_agi_env,
    ping,
    quote_arg,
    split_script,
)
from asterisk_cube.events import AgiSessionEnded, EventHub


def agi_env(script: str, **extra: str) -> bytes:
    lines = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1/{script}",
        "agi_channel": "PJSIP/carrier-00000001",
        "agi_uniqueid": "1730000000.1",
        "agi_callerid": "4791234567",
        "agi_extension": "4721000001",
        "agi_context": "cube-inbound",
        "agi_arg_1": "first",
        "agi_arg_2": "second",
        **extra,
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


class FakeAsterisk:
    """The Asterisk side of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), 2)
        return line.decode().rstrip("\n")

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 2) == b""


@pytest.fixture
async def server():
    hub = EventHub()
    srv = AgiServer("127.0.0.1", 0, hub=hub, env_timeout=0.5)
    srv.add_route("ping", ping)
    await srv.start()
    srv.events = hub.subscribe(AgiSessionEnded)
    yield srv
    await srv.close(grace=0.1)


# --- protocol ------------------------------------------------------------------------------


async def test_ping_sets_the_channel_variable(server):
    ast = await FakeAsterisk.connect(server.bound_port)
    await ast.send(agi_env("ping"))
    assert await ast.expect() == 'SET VARIABLE "CUBE_AGI" "ok"'
    await ast.send(b"200 result=1\n")
    assert await ast.closed_by_server()
    event = await asyncio.wait_for(server.events.get(), 1)
    assert (event.route, event.outcome, event.channel) == ("ping", "ok", "PJSIP/carrier-00000001")
    assert server.sessions_total == 1


async def test_session_api_reads_replies_and_environment(server):
    seen = {}

    async def probe(agi: AgiSession) -> None:
        seen["params"] = agi.params
        seen["args"] = agi.args
        seen["caller"] = agi.caller_number
        seen["var"] = await agi.get_variable("CUBE_CLIENT")
        seen["missing"] = await agi.get_variable("NOPE")
        res = await agi.exec("Playback", "hello-world", "noanswer")
        seen["exec"] = (res.result, res.extra)
        try:
            await agi.command("BOGUS")
        except AgiError as exc:
            seen["usage"] = exc.code, exc.line.count("\n")

    server.add_route("probe", probe)
    ast = await FakeAsterisk.connect(server.bound_port)
    await ast.send(agi_env("probe?client=7&x="))
    assert await ast.expect() == 'GET VARIABLE "CUBE_CLIENT"'
    await ast.send(b"200 result=1 (Acme (north))\n")
    assert await ast.expect() == 'GET VARIABLE "NOPE"'
    await ast.send(b"200 result=0\n")
    assert await ast.expect() == 'EXEC Playback "hello-world,noanswer"'
    await ast.send(b"100 result=0 Trying...\n200 result=0 endpos=1234\n")
    assert await ast.expect() == "BOGUS"
    await ast.send(b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n")
    await ast.send(b"520 End of proper usage.\n")
    assert await ast.closed_by_server()
    assert seen == {
        "params": {"client": "7", "x": ""},
        "args": ["first", "second"],
        "caller": "4791234567",
        "var": "Acme (north)",
        "missing": None,
        "exec": ("0", {"endpos": "1234"}),
        "usage": (520, 2),
    }


@pytest.mark.parametrize(
    "reply",
    [b"HANGUP\n", b"HANGUP\n200 result=1\n", b"511 Command Not Permitted on a dead channel\n", b""],
    ids=["async-hangup", "hangup-before-reply", "dead-channel", "eof"],
)
async def test_hangup_ends_the_route(server, reply):
    steps = []

    async def long_route(agi: AgiSession) -> None:
        steps.append(1)
        await agi.set_variable("A", "1")
        steps.append(2)  # never reached
        await agi.set_variable("B", "2")

    server.add_route("long", long_route)
    ast = await FakeAsterisk.connect(server.bound_port)
    await ast.send(agi_env("long"))
    assert await ast.expect() == 'SET VARIABLE "A" "1"'
    if reply:
        await ast.send(reply)
    else:
        ast.writer.close()
    event = await asyncio.wait_for(server.events.get(), 1)
    assert event.outcome == "hangup"
    assert steps == [1]


async def test_unknown_route_and_failing_route_close_the_connection(server):
    async def broken(agi: AgiSession) -> None:
        raise RuntimeError("bug")

    server.add_route("broken", broken)
    for script, outcome in (("nope", "no_route"), ("broken", "error")):
        ast = await FakeAsterisk.connect(server.bound_port)
        await ast.send(agi_env(script))
        assert await ast.closed_by_server()
        event = await asyncio.wait_for(server.events.get(), 1)
        assert event.outcome == outcome


async def test_value_with_a_variable_named_hangup_is_not_a_hangup(server):
    got = []

    async def route(agi: AgiSession) -> None:
        got.append(await agi.get_variable("MOOD"))

    server.add_route("mood", route)
    ast = await FakeAsterisk.connect(server.bound_port)
    await ast.send(agi_env("mood"))
    await ast.expect()
    await ast.send(b"200 result=1 (hangup)\n")
    assert await ast.closed_by_server()
    assert got == ["hangup"]


def test_routes_must_be_async():
    async def make():
        srv = AgiServer("127.0.0.1", 0)
        with pytest.raises(TypeError):
            srv.add_route("sync", lambda agi: None)
        srv.add_route("/entry/", ping)
        assert "entry" in srv.routes

    asyncio.run(make())


def test_helpers():
    assert split_script("entry?client=7") == ("entry", {"client": "7"})
    assert split_script("/ping") == ("ping", {})
    assert quote_arg('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    with pytest.raises(ValueError):
        quote_arg("two\nlines")
    env = parse_agi_env(b"agi_network: yes\nagi_arg_1:\nnoise\nagi_channel: SIP/a: b\n\n")
    assert env == {"agi_network": "yes", "agi_arg_1": "", "agi_channel": "SIP/a: b"}


# --- the guard: bad peers must not freeze the event loop -----------------------------------


class LoopThread:
    """An event loop on a daemon thread with a ticker; the test thread watches the ticks."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ticks = 0
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        self.call(self._start_ticker())

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _start_ticker(self):
        async def tick():
            while True:
                await asyncio.sleep(0.005)
                self.ticks += 1

        self.ticker = asyncio.get_running_loop().create_task(tick())

    def call(self, coro, timeout: float = 3.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def assert_ticking(self, during: float = 0.15) -> None:
        before = self.ticks
        time.sleep(during)
        assert self.ticks - before >= 5, "the event loop is frozen"

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(1)


def raw_peer(port: int, payload: bytes, linger: float = 0.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        if payload:
            sock.sendall(payload)
        time.sleep(linger)


@pytest.fixture
def guarded():
    lt = LoopThread()

    async def start():
        srv = AgiServer("127.0.0.1", 0, env_timeout=0.3, env_limit=4096)
        srv.add_route("ping", ping)
        await srv.start()
        return srv

    srv = lt.call(start())
    yield lt, srv
    if lt.thread.is_alive() and lt.ticks:
        with contextlib.suppress(Exception):
            lt.call(srv.close(grace=0.1), timeout=2)
    lt.stop()


def normal_session_works(lt: LoopThread, port: int) -> None:
    async def session():
        ast = await FakeAsterisk.connect(port)
        await ast.send(agi_env("ping"))
        assert await ast.expect() == 'SET VARIABLE "CUBE_AGI" "ok"'
        await ast.send(b"200 result=1\n")
        assert await ast.closed_by_server()

    lt.call(session())


@pytest.mark.parametrize(
    "payload,linger",
    [
        (b"", 0.0),  # connect and close: a port scan or TCP health check
        (b"agi_network: yes\nagi_network_script: ping\n", 0.0),  # closes mid-environment
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0),  # garbage, then close
        (b"agi_network: yes\n", 0.4),  # partial environment, then silence past the timeout
        (b"\x00\xff" * 3000, 0.1),  # binary junk beyond the size limit
        (b"hello\n\n", 0.0),  # a complete but meaningless environment
    ],
    ids=[
        "connect-close",
        "partial-close",
        "http-garbage",
        "partial-stall",
        "oversize",
        "no-script",
    ],
)
def test_bad_peer_does_not_freeze_the_loop(guarded, payload, linger):
    lt, srv = guarded
    port = srv.bound_port
    lt.assert_ticking()
    for _ in range(3):
        raw_peer(port, payload, linger)
    lt.assert_ticking()
    normal_session_works(lt, port)
    assert srv.rejected_total == 3
    assert srv.sessions_total == 1


def test_a_stalled_peer_is_cut_off_by_the_server_after_the_environment_timeout(guarded, caplog):
    """The server itself ends a connection that stops mid-environment (the peer here would
    wait for a reply for ever); not before ``env_timeout`` (0.3 s), and while it waits the
    loop keeps serving others."""
    lt, srv = guarded
    with socket.create_connection(("127.0.0.1", srv.bound_port), timeout=3) as sock:
        sock.sendall(b"agi_network: yes\nagi_network_script: ping\n")
        started = time.monotonic()
        normal_session_works(lt, srv.bound_port)
        with contextlib.suppress(ConnectionResetError):  # cut off with a reset: as good
            assert sock.recv(1) == b""
        waited = time.monotonic() - started
    assert waited >= 0.25  # not before its timeout (0.3 s, minus clock granularity)
    for _ in range(200):  # the server's side of the cut-off ends just after the peer sees it
        if srv.rejected_total:
            break
        time.sleep(0.01)
    assert srv.rejected_total == 1 and srv.sessions_total == 1
    reasons = [getattr(r, "cube_fields", {}).get("reason") for r in caplog.records]
    assert "environment timeout" in reasons
