"""Web app factory: /health and /version, extra routes."""

from types import SimpleNamespace

import httpx
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asterisk_cube import __version__
from asterisk_cube.config import Settings
from asterisk_cube.web.app import create_app, health_payload


def fake_state(ari_connected: bool, agi_listening: bool):
    supervisor = SimpleNamespace(
        connected=ari_connected,
        settings=SimpleNamespace(app="asterisk-cube"),
        connects=2,
        last_error="" if ari_connected else "ConnectError: refused",
    )
    agi = SimpleNamespace(listening=agi_listening, bound_port=4573, sessions_total=5)
    return SimpleNamespace(supervisor=supervisor, agi=agi, started_at=None, components={})


async def get(app, path):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_health_reports_ari_and_agi():
    app = create_app(Settings(), fake_state(True, True))
    resp = await get(app, "/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    # public: how things are, never error details (issue #12: those may carry credentials)
    assert body["ari"] == {"connected": True, "app": "asterisk-cube", "connects": 2}
    assert body["agi"] == {"listening": True, "port": 4573, "sessions": 5}


async def test_health_is_degraded_without_ari():
    state = fake_state(False, True)
    body = (await get(create_app(Settings(), state), "/health")).json()
    assert body["status"] == "degraded"
    assert body["ari"]["connected"] is False
    assert "last_error" not in body["ari"]
    # the details (GET /api/health, supervisors) say why
    assert health_payload(state, details=True)["ari"]["last_error"].startswith("ConnectError")


async def test_version_and_extra_routes():
    async def hello(request):
        assert request.app.state.cube is state
        return PlainTextResponse("hi")

    state = fake_state(True, True)
    app = create_app(Settings(), state, extra_routes=[Route("/hello", hello)])
    assert (await get(app, "/version")).json() == {"name": "asterisk-cube", "version": __version__}
    assert (await get(app, "/hello")).text == "hi"
    assert (await get(app, "/nope")).status_code == 404
