"""The lean ARI client (asterisk_cube/ari/client.py) against a small aiohttp stand-in for
Asterisk's HTTP server: requests as ARI documents them, errors with their status, events as
dicts, and an event stream that ends when the websocket closes."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from asterisk_cube.ari.client import AriClient, AriHttpError
from asterisk_cube.ari.inbound import http_status


@pytest.fixture
async def ari():
    seen: list[tuple[str, str, dict, str | None, str]] = []
    sockets: list[web.WebSocketResponse] = []

    async def rest(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append(
            (
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                request.headers.get("Authorization"),
                body,
            )
        )
        if request.path.endswith("/missing"):
            return web.json_response({"message": "Channel not found"}, status=404)
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({"id": "x", "ok": True})

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen.append(("WS", request.path, dict(request.query), None, ""))
        sockets.append(ws)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", events)
    app.router.add_route("*", "/ari/{tail:.*}", rest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/", seen, sockets
    finally:
        await runner.cleanup()


async def test_requests_are_built_as_ari_documents_them(ari):
    url, seen, _ = ari
    async with AriClient(url, "cube", "s3cret:x", "cube-app") as client:
        assert await client.channels.answer(channelId="ch/1") == {"id": "x", "ok": True}
        await client.bridges.addChannel(bridgeId="b1", channel=["a", "b"], inhibit=True)
        assert await client.channels.hangup(channelId="c2") is None  # 204
        await client.channels.originate(endpoint="PJSIP/ann", variables={"CALLERID(num)": "1"})
    ws, answer, add, hangup, originate = seen
    assert ws[:3] == ("WS", "/ari/events", {"app": "cube-app"})
    assert answer[:3] == ("POST", "/ari/channels/ch%2F1/answer", {})
    assert answer[3].startswith("Basic ")  # credentials in a header, never in the URL
    assert add[:3] == ("POST", "/ari/bridges/b1/addChannel", {"channel": "a,b", "inhibit": "true"})
    assert hangup[:2] == ("DELETE", "/ari/channels/c2")
    assert originate[2] == {"endpoint": "PJSIP/ann"}
    assert json.loads(originate[4]) == {"variables": {"CALLERID(num)": "1"}}


async def test_a_failed_request_raises_with_its_status(ari):
    url, _, _ = ari
    async with AriClient(url, "cube", "pw", "cube-app") as client:
        with pytest.raises(AriHttpError) as err:
            await client.channels.get(channelId="missing")
    assert err.value.status == 404 and http_status(err.value) == 404
    assert "Channel not found" in str(err.value)


async def test_an_unknown_operation_or_missing_path_parameter_is_a_clear_error(ari):
    url, _, _ = ari
    async with AriClient(url, "cube", "pw", "cube-app") as client:
        with pytest.raises(AttributeError, match=r"channels\.fly"):
            client.channels.fly  # noqa: B018
        with pytest.raises(TypeError, match="channelId"):
            await client.channels.answer()


async def test_events_are_dicts_and_the_stream_ends_when_the_websocket_closes(ari):
    url, _, sockets = ari
    async with AriClient(url, "cube", "pw", "cube-app") as client:
        got = []

        async def read():
            async for event in client:
                got.append(event)

        reader = asyncio.create_task(read())
        while not sockets:
            await asyncio.sleep(0.01)
        await sockets[0].send_str(json.dumps({"type": "StasisStart", "args": ["inbound"]}))
        await sockets[0].close()
        await asyncio.wait_for(reader, 5)
        assert got == [{"type": "StasisStart", "args": ["inbound"]}]
        assert client.websockets == set()
