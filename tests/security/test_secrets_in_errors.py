"""Issue #12 item 4: the ARI password never reaches ``GET /health`` or the log.

asyncari authenticated with ``?api_key=user:password`` and httpx quoted the request URL
in its errors, so an ARI that answers 401 used to put the password in ``ari.last_error``
(shown by the public ``/health``) and in every ``ari_connect_failed`` log line. Proven
against a real ``asterisk-cube serve`` whose ARI is a stub answering 401 to everything.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import httpx
import pytest
from support.polling import wait_until

from asterisk_cube.redact import redact

CLI = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]
ARI_PASSWORD = "Ari-Pass-9f3k"
BOSS_PASSWORD = "boss-secret-12"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Refusing(http.server.BaseHTTPRequestHandler):
    hits = threading.Event()

    def do_GET(self):
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).hits.set()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_ari():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve(tmp_path: Path, refusing_ari: str):
    (tmp_path / "cube.toml").write_text("")
    env = dict(os.environ)
    env.update(
        ASTERISK_CUBE_CONFIG=str(tmp_path / "cube.toml"),
        ASTERISK_CUBE_DATA_DIR=str(tmp_path),
        ASTERISK_CUBE_WEB_PORT=str(free_port()),
        ASTERISK_CUBE_AGI_PORT=str(free_port()),
        ASTERISK_CUBE_AMI_PORT=str(free_port()),  # nobody listens: the monitor retries
        ASTERISK_CUBE_ARI_URL=refusing_ari,
        ASTERISK_CUBE_ARI_PASSWORD=ARI_PASSWORD,
    )
    for args in (["db", "upgrade"], ["agent", "add", "boss", "--role", "supervisor"]):
        subprocess.run([*CLI, *args], env=env, check=True, capture_output=True)
    subprocess.run(
        [*CLI, "agent", "set", "boss", "--password-stdin"],
        env=env,
        input=BOSS_PASSWORD,
        text=True,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=out, stderr=out)
    try:
        yield f"http://127.0.0.1:{env['ASTERISK_CUBE_WEB_PORT']}", log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ari_password_is_not_in_health_or_log(serve):
    url, log = serve
    wait_until(lambda: "event=ari_connect_failed" in log.read_text(), 30, "a failed ARI connect")
    with urllib.request.urlopen(url + "/health", timeout=5) as resp:
        text = resp.read().decode()
    health = json.loads(text)
    assert health["status"] == "degraded"
    assert health["ari"]["connected"] is False
    assert "last_error" not in health["ari"], "no error details without a login"
    assert ARI_PASSWORD not in text

    logged = log.read_text()
    assert "401 Unauthorized" in logged  # the error itself is still there to read
    assert ARI_PASSWORD not in logged
    # the lean ARI client (#19) sends credentials in a header: none in any URL to redact
    assert "api_key" not in logged

    # a signed-in supervisor sees the details, redacted
    with httpx.Client(base_url=url) as client:
        resp = client.post("/api/login", json={"username": "boss", "password": BOSS_PASSWORD})
        assert resp.status_code == 200, resp.text
        details = client.get("/api/health")
        assert details.status_code == 200
        error = details.json()["ari"]["last_error"]
    assert "401 Unauthorized" in error
    assert "api_key" not in error
    assert ARI_PASSWORD not in details.text
    # and nobody else does
    assert httpx.get(url + "/api/health").status_code == 401


@pytest.mark.parametrize(
    "text, secret",
    [
        ("Client error for url 'http://h:8088/ari/x?api_key=cube%3Apw-1&app=a'", "pw-1"),
        ("ws://h/ari/events?app=a&api_key=cube:pw-2&subscribeAll=true", "pw-2"),
        ("could not connect: postgresql+psycopg://cube:pw-3@db:5432/cube", "pw-3"),
        ("smtp://mailer:pw@4@mail.example.com:587", "pw@4"),
        ("{'Action': 'Login', 'Username': 'cube', 'Secret': 'pw-5'}", "pw-5"),
        ("Authorization: Basic Y3ViZTpwdy02", "Y3ViZTpwdy02"),
        ("login failed: password=pw-7 user=cube", "pw-7"),
    ],
)
def test_one_redaction_for_every_error_text(text, secret):
    out = redact(text)
    assert secret not in out
    assert "***" in out
    assert redact(out) == out


@pytest.mark.parametrize("fmt", ["kv", "json"])
def test_log_lines_and_tracebacks_are_redacted(fmt):
    """Both log formats, our fields, a library's plain message and a traceback."""
    import io
    import logging

    from asterisk_cube import logs

    out = io.StringIO()
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    logs.configure("INFO", fmt, stream=out)
    try:
        log = logs.get_logger("test.secrets")
        log.warning("db_failed", url="postgresql+psycopg://cube:pw-81@db/cube")
        logging.getLogger("test.library").warning("GET http://h/ari?api_key=cube:pw-82 failed")
        try:
            raise ConnectionError("ws://h/ari/events?app=a&api_key=cube:pw-83")
        except ConnectionError:
            log.exception("ari_failed")
    finally:
        for handler in list(root.handlers):
            if handler not in before[1]:
                root.removeHandler(handler)
        root.setLevel(before[0])
    text = out.getvalue()
    assert "pw-8" not in text
    assert text.count("***") >= 4  # url, message, exc and traceback
