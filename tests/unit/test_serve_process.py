"""``asterisk-cube serve`` as a real process: starts without Asterisk, answers /health,
exits 0 quickly on SIGTERM/SIGINT, and refuses a busy port with a one-line error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import children
import pytest

SERVE = [sys.executable, "-c", "from asterisk_cube.cli import main; main()", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve_env(tmp_path):
    (tmp_path / "cube.toml").write_text("")
    env = dict(os.environ)
    env.update(
        ASTERISK_CUBE_CONFIG=str(tmp_path / "cube.toml"),
        ASTERISK_CUBE_DATA_DIR=str(tmp_path),
        ASTERISK_CUBE_WEB_PORT=str(free_port()),
        ASTERISK_CUBE_AGI_PORT=str(free_port()),
        ASTERISK_CUBE_ARI_URL=f"http://127.0.0.1:{free_port()}",  # nobody listens: it retries
    )
    subprocess.run([*SERVE[:-1], "db", "upgrade"], env=env, check=True, capture_output=True)
    return env


def start(env, tmp_path):
    """Start serve; its output goes to files (the child keeps its own copies of the fds)."""
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        return children.track(
            subprocess.Popen(SERVE, env=env, stdout=out, stderr=err, start_new_session=True)
        )


def health(env, timeout=10.0):
    url = f"http://127.0.0.1:{env['ASTERISK_CUBE_WEB_PORT']}/health"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.status, json.load(resp)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop(proc, sig) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_starts_without_asterisk_and_stops_cleanly(serve_env, tmp_path, sig):
    proc = start(serve_env, tmp_path)
    try:
        status, body = health(serve_env)
        assert status == 200
        assert body["status"] == "degraded"
        assert body["ari"]["connected"] is False
        assert body["agi"]["listening"] is True
        assert body["agi"]["port"] == int(serve_env["ASTERISK_CUBE_AGI_PORT"])
        time.sleep(0.5)  # let the supervisor fail a connection attempt or two
    finally:
        code, seconds = stop(proc, sig)
    stdout = (tmp_path / "stdout").read_text()
    stderr = (tmp_path / "stderr").read_text()
    assert code == 0, stderr
    assert seconds < 5
    assert f"http://127.0.0.1:{serve_env['ASTERISK_CUBE_WEB_PORT']}/" in stdout
    assert "event=ari_connect_failed" in stderr
    assert f"event=serve_stop reason={sig.name} exit_code=0" in stderr
    assert "Traceback" not in stderr.replace("traceback=", "")


def test_busy_port_is_a_one_line_error(serve_env, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(serve_env["ASTERISK_CUBE_WEB_PORT"])))
        busy.listen()
        proc = start(serve_env, tmp_path)
        code = proc.wait(10)
    stderr = (tmp_path / "stderr").read_text()
    assert code == 2
    assert "event=web_bind_failed" in stderr
    assert "Traceback" not in stderr


def test_unmigrated_database_is_a_one_line_error(serve_env, tmp_path):
    (tmp_path / "cube.db").unlink()
    proc = start(serve_env, tmp_path)
    code = proc.wait(10)
    stderr = (tmp_path / "stderr").read_text()
    assert code == 1
    assert "run `asterisk-cube db upgrade`" in stderr
    assert "Traceback" not in stderr
