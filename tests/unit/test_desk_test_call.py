"""The desk's Test call button (issue #16; web/testcall.py, demo/testcall.py): only with
``[demo] test_call_did`` set, signed-in agents with the CSRF token, one call at a time, a
clear refusal otherwise; the ``[demo]`` settings are checked naming the setting."""

from __future__ import annotations

import socket
import subprocess
import warnings

import pytest
from fakes.web import demo_for, make_accounts, make_app, make_settings

from asterisk_cube.config import ConfigError, load_settings
from asterisk_cube.core.testcall import CallTarget, DemoCallError, from_settings
from asterisk_cube.demo import testcall
from asterisk_cube.events import EventHub

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class FakeCaller:
    """What :func:`asterisk_cube.demo.testcall.place` returns, around a real child."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["sleep", "60"])

    def running(self) -> bool:
        return self.proc.poll() is None

    def end(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def placed(monkeypatch):
    calls: list[tuple[CallTarget, FakeCaller]] = []

    def place(target, **_kw):
        calls.append((target, FakeCaller()))
        return calls[-1][1]

    monkeypatch.setattr(testcall, "place", place)
    yield calls
    for _target, caller in calls:
        caller.end()


@pytest.fixture
def desk(tmp_path):
    sessions, ids = make_accounts(tmp_path)

    def client(did: str = "") -> TestClient:
        hub = EventHub()
        settings = make_settings(tmp_path)
        settings.demo.test_call_did = did
        settings.demo.test_call_sip = "127.0.0.1:15060"
        settings.demo.test_call_port = 15119
        return TestClient(make_app(settings, demo_for(hub, ids), hub, sessions))

    return client


def login(client, username="kari", password="kari-secret-1"):
    resp = client.post("/api/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]


def test_a_production_desk_has_no_test_call_and_refuses_one_saying_why(desk, placed):
    with desk("") as c:
        login(c)
        assert c.get("/api/test-call").json() == {"available": False}
        resp = c.post("/api/test-call", json={})
        assert resp.status_code == 409
        assert resp.json()["error"] == "test_call_off"
        assert resp.json()["message"] == "No test-call line is set up on this server."
        # the card is in the page but hidden; testcall.js shows it only when available
        assert '<section class="card" id="test-call-card" hidden>' in c.get("/desk").text
        c.post("/api/language", json={"language": "nb"})
        resp = c.post("/api/test-call", json={})
        assert resp.json()["message"] == (
            "Ingen linje for testsamtaler er satt opp på denne serveren."
        )
    assert placed == []


def test_one_click_places_the_configured_test_call_once_at_a_time(desk, placed):
    with desk("4721000004") as c:
        login(c)
        state = c.get("/api/test-call").json()
        assert state == {
            "available": True,
            "did": "4721000004",
            "caller_id": "+4791234567",
            "running": False,
        }
        resp = c.post("/api/test-call", json={})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"ok": True, "did": "4721000004", "caller_id": "+4791234567"}
        assert placed[0][0] == CallTarget("127.0.0.1:15060", 15119, "4721000004")
        assert c.get("/api/test-call").json()["running"] is True
        # a second click while it rings: refused, nothing started
        resp = c.post("/api/test-call", json={})
        assert resp.status_code == 409 and resp.json()["error"] == "test_call_busy"
        assert len(placed) == 1
        placed[0][1].end()  # the caller hung up: a new one may be placed
        assert c.get("/api/test-call").json()["running"] is False
        assert c.post("/api/test-call", json={}).status_code == 200
        assert len(placed) == 2


def test_only_a_signed_in_agent_with_the_csrf_token_places_it(desk, placed):
    with desk("4721000004") as c:
        assert c.post("/api/test-call", json={}).status_code == 401
        assert c.get("/api/test-call").status_code == 401
        login(c)
        del c.headers["X-CSRF-Token"]
        resp = c.post("/api/test-call", json={})
        assert resp.status_code == 403 and resp.json()["error"] == "csrf"
    assert placed == []


def test_a_busy_caller_port_is_refused_before_sipp_starts():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(DemoCallError, match=f"already under way \\(port {port} in use\\)"):
            testcall.place(CallTarget("127.0.0.1:5", port, "4721000004"))


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"DID": "47-21"}, "demo.test_call_did: line '47-21': give the line's number (digits)"),
        ({"DID": "4721000004"}, "demo.test_call_sip: SIP address '' is not host:port"),
        (
            {"DID": "4721000004", "SIP": "127.0.0.1:15060"},
            "demo.test_call_port: local port 0 is not a port number 1-65535",
        ),
        (
            {"DID": "4721000004", "SIP": "127.0.0.1:15060", "PORT": "15119", "FROM": "9x1"},
            "demo.test_call_from: caller number '9x1' is not a phone number",
        ),
    ],
)
def test_bad_demo_settings_are_refused_naming_the_setting(env, error):
    with pytest.raises(ConfigError) as exc:
        load_settings(env={f"ASTERISK_CUBE_DEMO_TEST_CALL_{k}": v for k, v in env.items()})
    assert str(exc.value).startswith(error)


def test_the_demo_env_points_the_test_call_at_the_sandbox():
    from asterisk_cube.sandbox import SandboxInstance

    inst = SandboxInstance("demo", 15000)
    settings = load_settings(env=testcall.settings_env(inst, "4721000004"))
    target = from_settings(settings.demo)
    assert target == CallTarget("127.0.0.1:15060", 15119, "4721000004", "+4791234567")
    assert from_settings(load_settings(env={}).demo) is None
