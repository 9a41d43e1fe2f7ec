"""The demo that lives (issue #16), end to end on the sandbox Asterisk: `asterisk-cube demo
run` with its traffic simulator for two minutes. While it runs:

* ``doctor`` on the demo (``demo env``) is clean: sounds inside the sandbox, the mail sink;
* a test call (``demo call``) reaches agent01's desk (and only agent01: the simulated agents
  do not serve the test-call line); agent01 takes it, Asterisk holds both legs (ARI
  ``GET /channels``), agent01 hangs up from the desk;
* the live panel in headless Chromium shows waiting or connected calls, agents in several
  states and the predictive campaign running with dials (screenshot ``demo-panel.png``);

and Ctrl-C (SIGINT to the demo's process group, as a terminal sends it) stops everything it
started: serve, the simulator and every SIPp process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import browserkit
import children
import httpx
import pytest
from agent_client import AgentClient
from browserkit import SHOTS, wait
from sandbox_fixtures import TEST_BASE_PORT, TEST_INSTANCE
from selenium.webdriver.common.by import By
from sippkit import phone

from asterisk_cube.sandbox import PASSWORD, USERNAME
from asterisk_cube.services.demo_data import TEST_DID

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CLI = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]
WHERE = ["--name", TEST_INSTANCE, "--base-port", str(TEST_BASE_PORT)]
RUN_FOR = 120.0  # seconds of traffic the panel is watched for
TEST_CALLER = "+4798765432"


def _sipp_of_demo(base: int) -> list[int]:
    """Pids of SIPp processes on the demo's phone ports (base+100..base+240)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith("sipp") and "-p" in cmd:
            port = int(cmd[cmd.index("-p") + 1])
            if base + 100 <= port <= base + 240:
                found.append(int(pid))
    return found


@pytest.fixture
def demo(sandbox, tmp_path):
    env = dict(os.environ)
    env.pop("ASTERISK_CUBE_CONFIG", None)
    env["ASTERISK_CUBE_DATA_DIR"] = str(tmp_path)
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 - closed below
    # --keep-pbx: the session's sandbox fixture owns this Asterisk
    command = [*CLI, "demo", "run", *WHERE, "--keep-pbx", "--history-days", "3"]
    command += ["--calls-per-minute", "4"]
    started = time.monotonic()
    proc = children.track(
        subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    )
    url = f"http://127.0.0.1:{sandbox.web_port}"
    deadline = time.monotonic() + 120
    while True:  # until serve answers /ready (the demo loads data and history first)
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/ready", timeout=2) as resp,
        ):
            if resp.status == 200:
                break
        assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
        assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()[-3000:]
        time.sleep(0.2)
    exports = [shlex.split(line)[1] for line in _cli(env, "demo", "env", *WHERE).splitlines()]
    demo_env = {**env, **dict(item.split("=", 1) for item in exports)}
    try:
        yield proc, url, demo_env, tmp_path, started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
            proc.wait(60)
        log.close()


def _cli(env, *args) -> str:
    out = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _channels(sandbox) -> list[dict]:
    resp = httpx.get(f"{sandbox.ari_url}/ari/channels", auth=(USERNAME, PASSWORD), timeout=5)
    resp.raise_for_status()
    return resp.json()


async def _take_test_call(url, sandbox, env) -> None:
    async with AgentClient(url) as me:
        await me.login("agent01", "demo-password")
        view = await me.start()
        test_line = [ln["line_id"] for ln in view["lines"] if ln["did"] == TEST_DID]
        assert test_line, view["lines"]
        await me.choose_lines(test_line)
        await me.ready()
        async with me.events() as events:
            caller = subprocess.Popen(
                [*CLI, "demo", "call", *WHERE, "--from", TEST_CALLER, "--hold", "60"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            children.track(caller)
            try:
                view = await _until_offered(me, events)
                assert view["offer"]["caller"] == TEST_CALLER
                assert view["offer"]["did"] == TEST_DID
                await me.accept(view["offer"]["call_id"])
                view = await events.wait_for(
                    lambda v: v["call"] and v["call"]["state"] == "connected", timeout=30
                )
                call_id = view["call"]["call_id"]
                names = [ch["name"] for ch in _channels(sandbox)]
                assert any(n.startswith("PJSIP/agent01-") for n in names), names
                assert any(ch["caller"]["number"] == TEST_CALLER for ch in _channels(sandbox)), (
                    names
                )
                await me.hangup(call_id)
                await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "ended")
                await me.close_call(call_id)
                assert caller.wait(30) == 0, caller.stdout.read().decode()
            finally:
                if caller.poll() is None:
                    caller.send_signal(signal.SIGINT)
                    caller.wait(10)
        await me.logout()


async def _until_offered(me, events) -> dict:
    """The view with the test call's offer (a call that reached agent01 otherwise, say a
    campaign call if it had the campaign's skill, is ended and closed first)."""
    deadline = time.monotonic() + 90
    while True:
        view = await events.wait_for(
            lambda v: v["offer"] or v["call"] or v["state"] == "wrap_up",
            timeout=max(1.0, deadline - time.monotonic()),
        )
        if view["offer"]:
            return view
        call = view["call"]
        if call and call["state"] == "connecting":  # its phone rings: until it connects
            await events.wait_for(
                lambda v, c=call["call_id"]: (
                    not v["call"] or v["call"]["call_id"] != c or v["call"]["state"] != "connecting"
                ),
                timeout=30,
            )
            continue
        if call and call["state"] != "ended":
            view = await me.hangup(call["call_id"])
            call = view["call"]
        if call:
            view = await me.close_call(call["call_id"])
        if view["state"] == "wrap_up":
            await me.finish_wrap_up()
        await events.wait_for(lambda v: not v["call"] and v["state"] != "wrap_up", timeout=10)


def _panel_lives(driver) -> dict | None:
    """What the panel shows now, if it shows it all: calls, agents in several states and the
    running campaign with dials; else None."""
    calls = driver.find_elements(By.CSS_SELECTOR, "#calls-body tr[data-call]")
    states = {  # ("On a call ⛔": blocked by the dialer)
        el.text.replace("⛔", "").strip()
        for el in driver.find_elements(By.CSS_SELECTOR, "#agents-body tr[data-agent] .state")
    }
    campaign = driver.find_elements(By.CSS_SELECTOR, "#campaigns-body tr[data-campaign] .status")
    attempts = driver.find_elements(By.CSS_SELECTOR, "#campaigns-body tr[data-campaign] .attempts")
    working = states - {"Logged out", ""}
    if (
        calls
        and len(working) >= 2
        and any(el.text == "Running" for el in campaign)
        and any(el.text.isdigit() and int(el.text) > 0 for el in attempts)
    ):
        return {"calls": len(calls), "states": sorted(states)}
    return None


def test_the_demo_lives_for_two_minutes(demo, sandbox, browser):
    proc, url, env, workdir, started = demo  # started: when `demo run` was started

    doctor = subprocess.run([*CLI, "doctor"], env=env, capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "0 problems" in doctor.stdout

    # agent01 is the person's: the demo gives it no phone (the browser phone will be it)
    with phone(sandbox, sandbox.agent_port(1), workdir / "agent01", answer_ms=300):
        asyncio.run(_take_test_call(url, sandbox, env))

    # supervisors land on the panel
    browserkit.log_in(browser, url, "supervisor", "demo-password", landing="/panel")
    seen = wait(browser, RUN_FOR + 30).until(_panel_lives)
    browser.save_screenshot(str(SHOTS / "demo-panel.png"))
    # keep watching until the demo has run RUN_FOR seconds: it still lives then
    wait(browser, RUN_FOR + 60).until(
        lambda d: time.monotonic() - started >= RUN_FOR and _panel_lives(d)
    )
    browser.save_screenshot(str(SHOTS / "demo-panel-2min.png"))
    assert proc.poll() is None
    print(f"\npanel after {time.monotonic() - started:.0f} s: {seen}")

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    assert proc.wait(60) == 0, (workdir / "demo.log").read_text()[-3000:]
    log = (workdir / "demo.log").read_text()
    assert "traffic stopped:" in log and "traffic simulator stopped" in log
    assert _sipp_of_demo(TEST_BASE_PORT) == []
    deadline = time.monotonic() + 20
    while _channels(sandbox) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _channels(sandbox) == []
