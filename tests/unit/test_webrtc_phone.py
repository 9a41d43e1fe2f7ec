"""The phone in the browser (issue #16) without Asterisk: which endpoint an agent's calls
ring, the generated PJSIP config and DTLS certificate, the settings, the desk's
/api/phone and the Content-Security-Policy that lets the desk reach Asterisk's WebSocket
and nothing else. The call itself: tests/browser/test_browser_phone.py."""

from __future__ import annotations

import stat
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import demo_for, make_accounts, make_app, make_settings

from asterisk_cube.acd.distributor import read_config
from asterisk_cube.config import ConfigError, load_settings
from asterisk_cube.core import phones
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.webrtc import ensure_certificate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WS = "wss://pbx.example.com:8089/ws"


# --- which phone rings ------------------------------------------------------------------


def test_the_chosen_phone_is_dialed():
    assert phones.dial_endpoint("PJSIP/kari", "desk", "kari") == "PJSIP/kari"
    assert phones.dial_endpoint("PJSIP/kari", "browser", "kari") == "PJSIP/cube-webrtc-kari"
    assert phones.dial_endpoint(None, "browser", "kari") == "PJSIP/cube-webrtc-kari"
    assert phones.dial_endpoint(None, "desk", "kari") is None


def test_the_distributor_reads_the_chosen_phone(tmp_path):
    """Offers, outbound connects and callbacks all dial the live agent's endpoint, which
    the distributor's configuration read takes from agents.phone."""
    sessions, ids = make_accounts(tmp_path)
    with transaction(sessions) as s:
        kari = s.get(m.Agent, ids["kari"])
        kari.endpoint, kari.phone = "PJSIP/kari", "browser"
        ola = s.get(m.Agent, ids["ola"])
        ola.endpoint = "PJSIP/ola"
    with transaction(sessions) as s:
        agents = read_config(s).agents
    assert agents[ids["kari"]].endpoint == "PJSIP/cube-webrtc-kari"
    assert agents[ids["ola"]].endpoint == "PJSIP/ola"


# --- the PJSIP config -----------------------------------------------------------------


def test_sip_passwords_are_per_agent_and_follow_the_key():
    one = phones.sip_password("key-1", "kari")
    assert one == phones.sip_password("key-1", "kari") and len(one) == 32
    assert one != phones.sip_password("key-1", "ola")
    assert one != phones.sip_password("key-2", "kari")


def test_the_pjsip_file_has_a_transport_a_template_and_one_endpoint_per_agent():
    config = phones.WebrtcConfig(WS, "/k/dtls.crt", "/k/dtls.key")
    text = phones.render_pjsip(config, [("kari", "pw-kari"), ("ola", "pw-ola")])
    assert "[cube-webrtc-wss]\ntype = transport\nprotocol = wss\n" in text
    assert "webrtc = yes" in text
    assert "dtls_cert_file = /k/dtls.crt" in text and "dtls_private_key = /k/dtls.key" in text
    assert "[cube-webrtc-kari](cube-webrtc)\naors = cube-webrtc-kari\n" in text
    assert "username = cube-webrtc-ola\npassword = pw-ola\n" in text
    assert "context = cube-agents" in text
    own = phones.render_pjsip(phones.WebrtcConfig(WS, "c", "k", transport="my-wss"), [])
    assert "type = transport" not in own and "transport = my-wss" in own


def test_the_dtls_certificate_is_made_once_with_a_private_key(tmp_path):
    cert, key, made = ensure_certificate(tmp_path / "keys")
    assert made and cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    before = cert.read_bytes()
    assert ensure_certificate(tmp_path / "keys")[2] is False
    assert cert.read_bytes() == before


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://pbx/ws", "must start with ws:// or wss://"),
        ("wss:///ws", "has no host"),
        ("wss://pbx/ws;x", "must not contain"),
    ],
)
def test_a_bad_ws_url_is_refused_naming_the_setting(url, problem, tmp_path):
    (tmp_path / "c.toml").write_text("")
    with pytest.raises(ConfigError, match=f"webrtc.ws_url {problem}"):
        load_settings(tmp_path / "c.toml", env={"ASTERISK_CUBE_WEBRTC_WS_URL": url})


def test_a_good_ws_url_is_taken(tmp_path):
    (tmp_path / "c.toml").write_text(f'[webrtc]\nws_url = "{WS}"\n')
    assert load_settings(tmp_path / "c.toml", env={}).webrtc.ws_url == WS


# --- the desk ---------------------------------------------------------------------------


@pytest.fixture
def desk_app(tmp_path):
    sessions, ids = make_accounts(tmp_path)
    with transaction(sessions) as s:
        s.get(m.Agent, ids["kari"]).endpoint = "PJSIP/kari"

    def app(ws_url=""):
        hub = EventHub()
        settings = make_settings(tmp_path)
        settings.webrtc.ws_url = ws_url
        return TestClient(make_app(settings, demo_for(hub, ids), hub, sessions))

    app.sessions, app.ids = sessions, ids
    return app


def login(client, username="kari", password="kari-secret-1"):
    resp = client.post("/api/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]


def test_the_agent_picks_the_browser_phone_and_gets_its_own_sip_account(desk_app):
    c = desk_app(WS)
    login(c)
    state = c.get("/api/phone").json()
    assert state["phone"] == "desk" and state["available"]
    assert state["desk_endpoint"] == "PJSIP/kari"
    assert state["sip"]["uri"] == "sip:cube-webrtc-kari@pbx.example.com"
    assert state["sip"]["ws_url"] == WS
    resp = c.post("/api/phone", json={"phone": "browser"})
    assert resp.status_code == 200 and resp.json()["phone"] == "browser"
    with transaction(desk_app.sessions) as s:
        assert s.get(m.Agent, desk_app.ids["kari"]).phone == "browser"
    page = c.get("/desk")
    assert 'id="phone-card"' in page.text and "jssip-3.13.8.min.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self' wss://pbx.example.com:8089;" in csp
    # only the desk page: the login page needs no WebSocket
    c.post("/api/logout")
    assert "connect-src 'self';" in c.get("/login").headers["content-security-policy"]


def test_a_bad_choice_is_refused_and_nothing_is_written(desk_app):
    c = desk_app(WS)
    login(c)
    resp = c.post("/api/phone", json={"phone": "mobile"})
    assert resp.status_code == 400
    assert resp.json()["message"] == "phone: must be desk or browser"
    with transaction(desk_app.sessions) as s:
        assert s.get(m.Agent, desk_app.ids["kari"]).phone == "desk"


def test_without_webrtc_there_is_no_browser_phone_and_the_csp_stays_closed(desk_app):
    c = desk_app("")
    login(c)
    assert c.get("/api/phone").json() == {
        "phone": "desk",
        "available": False,
        "desk_endpoint": "PJSIP/kari",
    }
    resp = c.post("/api/phone", json={"phone": "browser"})
    assert resp.status_code == 400 and "not set up" in resp.json()["message"]
    page = c.get("/desk")
    assert 'id="phone-card"' not in page.text
    assert "connect-src 'self';" in page.headers["content-security-policy"]


# --- the sandbox ------------------------------------------------------------------------


def test_the_sandbox_serves_ws_on_its_http_port_and_includes_the_browser_phones():
    from asterisk_cube.config import Settings, _apply
    from asterisk_cube.sandbox import SandboxInstance
    from asterisk_cube.sandbox_config import render_pjsip

    inst = SandboxInstance("dev", 35000, Path("/srv/sbx"))
    assert inst.ws_url == "ws://127.0.0.1:35088/ws"
    env = inst.env()
    settings = Settings()
    prefix = "ASTERISK_CUBE_WEBRTC_"
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    _apply(settings, "webrtc", values, "environment")
    assert settings.webrtc.ws_url == inst.ws_url
    assert settings.webrtc.pjsip_path == "/srv/sbx/srv/cube/dev/etc/pjsip_asterisk-cube.conf"
    assert settings.webrtc.asterisk_cert_dir == "/srv/cube/dev/lib/keys/webrtc"
    assert '#tryinclude "/srv/cube/dev/etc/pjsip_asterisk-cube.conf"' in render_pjsip(inst)


# --- doctor -----------------------------------------------------------------------------


def _verdicts(**kw):
    args = {
        "ws_url": WS,
        "installed": "file",
        "rendered": "file",
        "path": "/etc/asterisk/pjsip_asterisk-cube.conf",
        "transports": "Transport:  cube-webrtc-wss   wss  0 0 0.0.0.0:5060",
        "transport": "cube-webrtc-wss",
        "certificate": None,
    }
    args.update(kw)
    return {f.check: f for f in phones.doctor_findings(**args)}


def test_doctor_says_ok_when_everything_is_in_place():
    assert all(f.ok for f in _verdicts().values())


def test_doctor_names_each_problem_and_its_fix():
    found = _verdicts(
        ws_url="ws://pbx.example.com:8088/ws",
        installed="old",
        transports="Transport:  transport-udp  udp",
        certificate="/etc/asterisk/keys/asterisk-cube/dtls.key",
    )
    assert "wss://" in found["browser phone url"].detail
    assert "differs" in found["browser phone file"].detail
    assert "#include pjsip_asterisk-cube.conf" in found["browser phone transport"].fix
    assert found["browser phone certificate"].fix == "run `asterisk-cube webrtc install`"
    assert _verdicts(installed=None)["browser phone file"].detail.endswith("is missing")
    # plain ws is fine on loopback (the sandbox); no database: the file only has to exist
    assert _verdicts(ws_url="ws://127.0.0.1:15088/ws")["browser phone url"].ok
    assert _verdicts(installed="x", rendered=None)["browser phone file"].ok
