"""The runtime in-process: wiring hooks, handler factories, components, stop and failure."""

from __future__ import annotations

import asyncio
import socket

import httpx
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asterisk_cube.agi.session import AgiSession
from asterisk_cube.config import Settings
from asterisk_cube.runtime import EXIT_BIND, EXIT_FAILED, EXIT_OK, Runtime, RuntimeState


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings() -> Settings:
    s = Settings()
    s.web.port = free_port()
    s.agi.port = free_port()
    s.ari.url = f"http://127.0.0.1:{free_port()}"  # unreachable: the supervisor keeps retrying
    return s


async def wait_ready(runtime: Runtime) -> RuntimeState:
    async with asyncio.timeout(5):
        while runtime.state.started_at is None:
            await asyncio.sleep(0.01)
    return runtime.state


async def test_parts_are_wired_and_stop_cleanly():
    made = {}

    class Handler:
        async def on_event(self, event, client):
            pass

    def handler_factory(state):
        made["supervisor"] = state.supervisor
        return Handler()

    async def entry(agi: AgiSession) -> None:
        pass

    async def hello(request):
        return PlainTextResponse(request.app.state.cube.extras["greeting"])

    async def wire(state):
        state.extras["greeting"] = "hi"
        state.web_routes.append(Route("/hello", hello))

    ticks = []

    async def ami(state):
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    runtime = Runtime(
        settings(),
        handler=handler_factory,
        agi_routes={"entry": entry},
        components={"ami": ami},
        setup=[wire],
        install_signal_handlers=False,
    )
    task = asyncio.create_task(runtime.run())
    state = await wait_ready(runtime)
    assert made["supervisor"] is state.supervisor
    assert isinstance(state.supervisor.handler, Handler)
    assert set(state.agi.routes) == {"ping", "entry"}
    base = f"http://127.0.0.1:{state.settings.web.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/hello")).text == "hi"
        health = (await client.get("/health")).json()
    assert health["agi"]["listening"] is True
    assert health["ari"]["connected"] is False
    assert health["components"] == {"web": "running", "ari": "running", "ami": "running"}
    assert ticks
    runtime.request_stop("test")
    assert await asyncio.wait_for(task, 10) == EXIT_OK
    assert all(t.done() for t in state.components.values())
    assert not state.agi.listening


async def test_a_dying_component_stops_everything_with_exit_1():
    async def broken(state):
        await asyncio.sleep(0.05)
        raise RuntimeError("ami gone")

    runtime = Runtime(settings(), components={"ami": broken}, install_signal_handlers=False)
    assert await asyncio.wait_for(runtime.run(), 10) == EXIT_FAILED
    assert "ami died" in runtime.stop_reason


async def test_busy_agi_port():
    s = settings()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", s.agi.port))
        busy.listen()
        assert await Runtime(s, install_signal_handlers=False).run() == EXIT_BIND
