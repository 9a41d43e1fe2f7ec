"""``asterisk-cube serve`` against the real sandbox Asterisk: the Stasis app is registered,
calls reach it and are continued, FastAGI answers Asterisk, and the ARI connection comes
back after Asterisk restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import children
import httpx
import pytest

from asterisk_cube.ari.supervisor import Backoff
from asterisk_cube.sandbox_host import PASSWORD, USERNAME

SERVE = [sys.executable, "-c", "from asterisk_cube.cli import main; main()", "serve"]
APP = "asterisk-cube"


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Serve:
    def __init__(self, proc: subprocess.Popen, env: dict[str, str], stderr_path):
        self.proc = proc
        self.env = env
        self.stderr_path = stderr_path

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['ASTERISK_CUBE_WEB_PORT']}"

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(self.web + "/health", timeout=1) as resp:
                return json.load(resp)
        except OSError:
            return {}

    def ari_connected(self) -> bool:
        return bool(self.health().get("ari", {}).get("connected"))

    def log(self) -> str:
        return self.stderr_path.read_text()


@pytest.fixture(scope="module")
def serve(sandbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "cube.toml").write_text("")
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(ASTERISK_CUBE_CONFIG=str(tmp / "cube.toml"), ASTERISK_CUBE_DATA_DIR=str(tmp))
    env["ASTERISK_CUBE_LOG_LEVEL"] = "DEBUG"  # successful AGI sessions log at DEBUG
    subprocess.run([*SERVE[:-1], "db", "upgrade"], env=env, check=True, capture_output=True)
    with open(tmp / "stdout", "w") as out, open(tmp / "stderr", "w") as err:
        proc = children.track(
            subprocess.Popen(SERVE, env=env, stdout=out, stderr=err, start_new_session=True)
        )
    srv = Serve(proc, env, tmp / "stderr")
    try:
        wait_for(srv.ari_connected, 15, "serve to connect to ARI")
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, srv.log()[-3000:]


@pytest.fixture
def ari(sandbox):
    with httpx.Client(
        base_url=f"{sandbox.ari_url}/ari", auth=(USERNAME, PASSWORD), timeout=5
    ) as client:
        yield client


def test_stasis_app_is_registered(serve, ari):
    apps = {app["name"] for app in ari.get("/applications").json()}
    assert APP in apps
    health = serve.health()
    assert health["status"] == "ok"
    assert health["agi"]["listening"] is True


def dialplan(agi_port: int) -> str:
    return f"""
[cube-test]
exten => s,1,NoOp(serve test call)
 same => n,Stasis({APP},test,${{EXTEN}})
 same => n,Set(AFTER_STASIS=yes)
 same => n,Wait(20)
exten => agi,1,AGI(agi://127.0.0.1:{agi_port}/ping)
 same => n,Set(AGI_DONE=${{AGISTATUS}})
 same => n,Wait(20)
exten => wait,1,Answer()
 same => n,Wait(20)
"""


def originate(ari: httpx.Client, exten: str) -> str:
    channel_id = f"serve-test-{uuid.uuid4().hex[:8]}"
    resp = ari.post(
        "/channels",
        params={
            "endpoint": "Local/wait@cube-test",
            "context": "cube-test",
            "extension": exten,
            "priority": 1,
            "channelId": channel_id,
            "otherChannelId": channel_id + "-2",
        },
    )
    assert resp.status_code == 200, resp.text
    return channel_id


def variable(ari: httpx.Client, channel_id: str, name: str) -> str | None:
    resp = ari.get(f"/channels/{channel_id}/variable", params={"variable": name})
    return resp.json().get("value") if resp.status_code == 200 else None


def test_call_reaches_the_stasis_app_and_continues_in_the_dialplan(
    serve, ari, sandbox, test_dialplan
):
    test_dialplan(dialplan(sandbox.agi_port))
    channel_id = originate(ari, "s")
    try:
        wait_for(
            lambda: f"event=stasis_start channel={channel_id}" in serve.log(), 5, "StasisStart"
        )
        # the placeholder handler continues the call at the next priority
        wait_for(lambda: variable(ari, channel_id, "AFTER_STASIS") == "yes", 5, "continue")
        assert "args=test,s" in serve.log()
        # StasisEnd reaches serve over the event websocket after Asterisk has moved on
        wait_for(lambda: f"event=stasis_end channel={channel_id}" in serve.log(), 5, "StasisEnd")
    finally:
        ari.delete(f"/channels/{channel_id}")


def test_fastagi_ping_through_asterisk(serve, ari, sandbox, test_dialplan):
    test_dialplan(dialplan(sandbox.agi_port))
    channel_id = originate(ari, "agi")
    try:
        wait_for(lambda: variable(ari, channel_id, "AGI_DONE") == "SUCCESS", 5, "AGI to finish")
        assert variable(ari, channel_id, "CUBE_AGI") == "ok"
        assert "event=agi_session route=ping" in serve.log()
    finally:
        ari.delete(f"/channels/{channel_id}")


def test_module_reload_keeps_the_connection(serve, ari, sandbox):
    # Measured on Asterisk 22: reloading res_ari does not drop the websocket.
    before = serve.health()["ari"]["connects"]
    assert "reloaded" in sandbox.rx("module reload res_ari.so")
    time.sleep(1)
    health = serve.health()
    assert health["ari"]["connected"] is True
    assert health["ari"]["connects"] == before
    assert APP in {app["name"] for app in ari.get("/applications").json()}


def test_supervisor_reconnects_after_asterisk_restarts(serve, sandbox):
    before = serve.health()["ari"]["connects"]
    pid = sandbox.pid()
    sandbox.down()
    wait_for(lambda: not serve.ari_connected(), 5, "serve to notice Asterisk is gone")
    wait_for(lambda: pid is None or not os.path.exists(f"/proc/{pid}"), 10, "Asterisk to exit")
    time.sleep(1.0)  # let the supervisor fail (and back off) while Asterisk is down
    assert "event=ari_disconnected" in serve.log()
    assert "event=ari_connect_failed" in serve.log()
    sandbox.up()
    up_at = time.monotonic()
    wait_for(lambda: serve.health()["ari"]["connects"] > before, 15, "reconnect")
    reconnect = time.monotonic() - up_at
    assert serve.ari_connected()
    with httpx.Client(auth=(USERNAME, PASSWORD), timeout=5) as client:
        apps = client.get(f"{sandbox.ari_url}/ari/applications").json()
    assert APP in {app["name"] for app in apps}
    print(f"\nARI reconnected {reconnect:.2f} s after Asterisk answered again")
    assert reconnect < Backoff().cap + 3  # at most one capped backoff step plus connecting
