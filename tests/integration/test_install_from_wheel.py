"""The README's "Installing into an existing Asterisk", as written, from a built wheel into
a fresh virtualenv, against the sandbox Asterisk treated as one the product did not build
(issue #15): `python -m build`, pip install the wheel, cube.toml with [agi] and [web],
`db upgrade`, provisioning, `sounds install`, `dialplan install`, `doctor` all ok, `serve`
ready, one SIPp call answered by a SIPp agent through the desk.

Slow (a build and a pip install: ~30 s, needs the package index): CI runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from agent_client import AgentClient
from sippkit import caller, phone

from asterisk_cube.sandbox_host import PASSWORD as SANDBOX_PASSWORD
from asterisk_cube.sandbox_host import USERNAME as SANDBOX_USER

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DID = "4721777000"
AGENT_PASSWORD = "agent-password-1"


def run(*cmd, env=None, timeout=300) -> str:
    out = subprocess.run(
        [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{cmd}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """README step 1: build the wheel, install it (only it) into a fresh venv."""
    work = tmp_path_factory.mktemp("wheel")
    # sdist first, then the wheel built from the sdist: both release files are proven
    run(sys.executable, "-m", "build", "--outdir", work / "dist", ROOT)
    (wheel,) = (work / "dist").glob("asterisk_cube-*-py3-none-any.whl")
    assert list((work / "dist").glob("asterisk_cube-*.tar.gz"))
    run(sys.executable, "-m", "venv", work / "venv")
    run(work / "venv/bin/pip", "install", "-q", wheel)
    exe = work / "venv/bin/asterisk-cube"
    assert exe.exists()
    return exe


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> dict:
    """Until /ready says 200 (a fresh venv compiles every module on the first start: slow
    on a loaded machine)."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-4000:]
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:  # 503 until every part is up
            body = json.load(exc)
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve never became ready: {body}\n{log.read_text()[-4000:]}")


async def test_readme_install_path_from_a_wheel(installed, sandbox, tmp_path):
    exe = installed
    # a clean environment: nothing from the test run leaks into the installed product
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env["ASTERISK_CUBE_CONFIG"] = str(tmp_path / "cube.toml")
    sounds_dir = Path(sandbox.root) / "usr/share/asterisk/sounds/asterisk-cube"
    # README step 3, with the sandbox's addresses (the admin's own Asterisk)
    (tmp_path / "cube.toml").write_text(
        f"""data_dir = "{tmp_path / "data"}"
[database]
url = "sqlite:///{tmp_path / "data" / "cube.db"}"
[ari]
url = "{sandbox.ari_url}"
username = "{SANDBOX_USER}"
password = "{SANDBOX_PASSWORD}"
[ami]
port = {sandbox.ami_port}
username = "{SANDBOX_USER}"
secret = "{SANDBOX_PASSWORD}"
[agi]
host = "127.0.0.1"
port = {sandbox.agi_port}
[web]
host = "127.0.0.1"
port = {sandbox.web_port}
[dialplan]
path = "{sandbox.dialplan_path}"
outbound_dial = "PJSIP/{{number}}@carrier"
"""
    )
    (tmp_path / "data").mkdir(mode=0o700)
    cube = lambda *args: run(exe, *args, env=env)  # noqa: E731
    # step 4
    assert "database at revision" in cube("db", "upgrade")
    cube("line", "add", DID, "--name", "Support", "--offer-timeout", "15")
    cube(
        "agent", "add", "agent01", "--endpoint", "PJSIP/agent01", "--line", DID,
        "--password", AGENT_PASSWORD,
    )  # fmt: skip
    # step 6 (before 5: doctor wants both), step 5
    assert "prompts in" in cube("sounds", "install", "--dir", sounds_dir)
    assert "dialplan reloaded in Asterisk" in cube("dialplan", "install")
    # step 7: every check ok
    report = json.loads(cube("doctor", "--json", "--sounds-dir", sounds_dir))
    assert report["problems"] == 0, report
    assert f"'{DID}' =>" in sandbox.rx("dialplan show cube-inbound")  # outside view
    # step 8: serve, from the installed venv
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{sandbox.web_port}"
        ready = wait_ready(url, proc, log)
        assert ready["ready"] is True, ready
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            assert b"asterisk_cube_ari_connected 1.0" in resp.read()
        await one_call_answered(url, sandbox, tmp_path)
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        line = f'line="{DID}"'
        assert f"asterisk_cube_inbound_answered_total{{{line}}} 1.0" in metrics
        assert f'asterisk_cube_inbound_offers_total{{{line},outcome="accepted"}} 1.0' in metrics
        for stage in ("arrival_to_originate", "answer_to_bridged"):
            assert f'asterisk_cube_inbound_call_setup_seconds_count{{stage="{stage}"}} 1.0' in (
                metrics
            )
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-4000:]


async def one_call_answered(url: str, sandbox, tmp_path: Path) -> None:
    agent = AgentClient(url)
    try:
        await agent.login("agent01", AGENT_PASSWORD)
        view = await agent.start()
        await agent.choose_lines([ln["line_id"] for ln in view["lines"] if ln["did"] == DID])
        await agent.ready()
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent", answer_ms=200):
            call = caller(
                sandbox, DID, tmp_path / "caller", caller_id="91000077", hold_ms=15000
            ).start()
            async with agent.events() as events:
                view = await events.wait_for(lambda v: v["offer"], timeout=60)
            assert view["offer"]["caller"] == "91000077"
            call_id = view["offer"]["call_id"]
            await agent.accept(call_id)
            async with agent.events() as events:
                await events.wait_for(
                    lambda v: v["call"] and v["call"]["state"] == "connected", timeout=60
                )
            # outside view: the caller and agent01's phone share the call's bridge
            bridge = sandbox.rx(f"bridge show cube-call-{call_id}")
            assert "PJSIP/agent01" in bridge and "PJSIP/carrier" in bridge, bridge
            result = await asyncio.to_thread(call.wait, 90)
            assert result.ok, result.summary()
    finally:
        await agent.aclose()
