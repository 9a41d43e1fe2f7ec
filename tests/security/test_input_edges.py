"""Issue #12 item 11, the smaller edges: the Secure cookie and trusted proxies are settings;
report dates outside any sane range, a form-encoded or oversized JSON body, a huge CSV
field, a bad config file and `demo load` on a production database each get a clear
one-line refusal (4xx / exit 1) instead of a 500, a traceback or silent damage."""

from __future__ import annotations

import asyncio
import json
import socket
import warnings
from types import SimpleNamespace

import httpx
import pytest
from click.testing import CliRunner
from fakes.web import demo_for, make_accounts, make_settings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asterisk_cube.cli import cli
from asterisk_cube.config import ConfigError, Settings, load_settings
from asterisk_cube.events import EventHub
from asterisk_cube.runtime import EXIT_OK, Runtime
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.reports import Reports

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def web_app(tmp_path, settings: Settings | None = None):
    sessions, ids = make_accounts(tmp_path)
    settings = settings or make_settings(tmp_path)
    hub = EventHub()
    mount = desktop_mount(
        settings, demo_for(hub, ids), hub, sessions, extra_routes=Reports(sessions).routes()
    )
    return create_app(settings, SimpleNamespace(hub=hub, web=None), extra_routes=[mount])


def logged_in(app, username="siri", password="siri-secret-1") -> TestClient:
    c = TestClient(app, raise_server_exceptions=True)
    r = c.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


# --- the session cookie and the proxies -----------------------------------------------------


def test_secure_cookie_is_a_setting(tmp_path):
    plain = TestClient(web_app(tmp_path / "a"))
    r = plain.post("/api/login", json={"username": "kari", "password": "kari-secret-1"})
    assert "secure" not in r.headers["set-cookie"].lower()

    settings = load_settings(env={"ASTERISK_CUBE_WEB_SECURE_COOKIE": "true"})
    assert settings.web.secure_cookie is True
    settings.data_dir = tmp_path / "b"
    secure = TestClient(web_app(tmp_path / "b", settings), base_url="https://cube.test")
    r = secure.post("/api/login", json={"username": "kari", "password": "kari-secret-1"})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "cube_session=" in cookie and "; secure" in cookie


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _client_seen(trusted: str) -> dict:
    """What a real `serve` web server (uvicorn, as the runtime configures it) believes about
    the client of a request from 127.0.0.1 that claims X-Forwarded-For/-Proto."""

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"host": request.client.host, "scheme": request.url.scheme})

    async def wire(state):
        state.web_routes.append(Route("/whoami", whoami))

    s = Settings()
    s.web.port, s.agi.port = _free_port(), _free_port()
    s.ari.url = f"http://127.0.0.1:{_free_port()}"  # unreachable: the supervisor retries
    s.web.trusted_proxies = trusted
    runtime = Runtime(s, setup=[wire], install_signal_handlers=False)
    task = asyncio.create_task(runtime.run())
    async with asyncio.timeout(10):
        while runtime.state.started_at is None:
            await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.web.port}") as client:
            r = await client.get(
                "/whoami",
                headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
            )
            return r.json()
    finally:
        runtime.request_stop("test")
        assert await asyncio.wait_for(task, 10) == EXIT_OK


async def test_forwarded_headers_are_believed_only_from_trusted_proxies():
    assert await _client_seen("") == {"host": "127.0.0.1", "scheme": "http"}
    assert await _client_seen("10.0.0.0/8, 127.0.0.1") == {"host": "203.0.113.7", "scheme": "https"}


def test_a_bad_trusted_proxy_is_one_line():
    with pytest.raises(ConfigError, match=r"web.trusted_proxies: 'proxy.lan' is not an IP"):
        load_settings(env={"ASTERISK_CUBE_WEB_TRUSTED_PROXIES": "127.0.0.1,proxy.lan"})


# --- report dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "to=0001-01-01",
        "from=9999-12-31",
        "from=9999-12-31&to=9999-12-31",
        "from=0001-01-01&to=0001-01-07",
        "from=1969-12-31&to=1970-01-02",
    ],
)
@pytest.mark.parametrize("path", ["/api/reports", "/reports/export.csv", "/reports"])
def test_report_dates_out_of_range_are_400(tmp_path, path, query):
    c = logged_in(web_app(tmp_path))
    r = c.get(f"{path}?{query}", headers={"Accept": "text/html"})
    assert r.status_code == 400, r.text
    assert "must be between 1970-01-01 and 9998-12-31" in r.text


@pytest.mark.parametrize("query", ["agent=kari%0Aevil", "zone=UTC%00", "group=day%1B"])
def test_report_query_with_control_characters_is_400(tmp_path, query):
    c = logged_in(web_app(tmp_path))
    for path in ("/api/reports", "/reports/export.csv"):
        r = c.get(f"{path}?report=agents&{query}")
        assert r.status_code == 400, r.text
        assert "contains a control character" in r.text


# --- request bodies ---------------------------------------------------------------------------


def test_a_form_encoded_post_is_415_not_500(tmp_path):
    c = logged_in(web_app(tmp_path), "kari", "kari-secret-1")
    token = c.headers.pop("X-CSRF-Token")
    for path in ("/api/start", "/api/lines", "/api/pause"):
        r = c.post(path, data={"csrf_token": token, "line_ids": "1"})  # CSRF via the form
        assert r.status_code == 415, (path, r.text)
        assert r.json()["field"] == "body"
    c.headers["X-CSRF-Token"] = token
    r = c.post("/api/start", data={"x": "1"})
    assert r.status_code == 415
    assert c.get("/api/me").json()["state"] == "logged_out"  # nothing happened


def test_an_oversized_body_is_413_chunked_or_not(tmp_path):
    c = logged_in(web_app(tmp_path), "kari", "kari-secret-1")
    headers = {"Content-Type": "application/json"}

    def chunks():
        yield b'{"line_ids": ['
        for _ in range(10 * 1024):
            yield b"1," * 512
        yield b"1]}"

    r = c.post("/api/lines", content=chunks(), headers=headers)  # no Content-Length
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large"
    big = b'{"comment": "' + b"x" * (1024 * 1024) + b'"}'
    r = c.post("/api/lines", content=big, headers=headers)
    assert r.status_code == 413
    assert c.post("/api/start").status_code == 200  # the server is fine


# --- CSV imports ------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def contacts(run, campaign="W"):
    return json.loads(run("contacts", "list", campaign, "--format", "json").output)


def test_a_csv_field_over_128_kib_is_one_line_and_nothing_stored(run, tmp_path):
    assert run("campaign", "add", "W", "--mode", "power").exit_code == 0
    path = tmp_path / "big.csv"
    path.write_text("phone,name\n91234567,Kari\n91234568," + "x" * (200 * 1024) + "\n")
    result = run("contacts", "import", "W", str(path))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the CSV file is not readable at line 3: field larger than field limit (131072)"
    ]
    assert contacts(run) == []
    assert run("client", "add", "Acme AS").exit_code == 0
    path.write_text("name,department\nKari," + "x" * (200 * 1024) + "\n")
    result = run("client", "employee", "import", "Acme AS", str(path))
    assert result.exit_code == 1 and "field larger than field limit" in result.output


def test_nul_bytes_in_a_csv_are_not_stored(run, tmp_path):
    assert run("campaign", "add", "W", "--mode", "power").exit_code == 0
    path = tmp_path / "nul.csv"
    path.write_bytes(b"phone,name\n91234567,Ka\x00ri\n91234568,Ola\n")
    result = run("contacts", "import", "W", str(path), "--valid-only")
    assert result.exit_code == 0
    assert "row 2: name contains a control character (U+0000)" in result.output
    assert [c["name"] for c in contacts(run)] == ["Ola"]


# --- the config file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"data_dir = 5\n", "data_dir must be a path (a string), got 5"),
        (b"data_dir = ['/a']\n", "data_dir must be a path (a string)"),
        (b'[web]\nsecret_key = "\xff\xfe"\n', "not UTF-8 text (byte 20)"),
        (b"[web]\ntrusted_proxies = 'everyone'\n", "web.trusted_proxies: 'everyone' is not"),
        (b'[smtp]\nsender = "a@b.no\\r\\nBcc: x@y.no"\n', "smtp.sender contains a control"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, monkeypatch, content, message):
    path = tmp_path / "cube.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(path, env={})
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["line", "list"], catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: configuration: ") and message in line


# --- demo data --------------------------------------------------------------------------------


def test_demo_load_refuses_a_database_with_users_or_lines(run):
    assert run("line", "add", "4721000555", "--name", "Production").exit_code == 0
    result = run("demo", "load")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "already has users or lines" in line and "--force" in line
    lines = json.loads(run("line", "list", "--format", "json").output)
    assert [x["did"] for x in lines] == ["4721000555"]
    agents = json.loads(run("agent", "list", "--format", "json").output)
    assert agents == []
    forced = run("demo", "load", "--force")
    assert forced.exit_code == 0 and "demo data loaded" in forced.output


def test_demo_load_refuses_a_database_with_only_users(run):
    assert (
        run("agent", "add", "admin", "--role", "admin", "--password", "s3cret-pass").exit_code == 0
    )
    result = run("demo", "load")
    assert result.exit_code == 1 and "already has users or lines" in result.output
    agents = json.loads(run("agent", "list", "--format", "json").output)
    assert [a["username"] for a in agents] == ["admin"]
    assert json.loads(run("line", "list", "--format", "json").output) == []
