"""A test run stopped with SIGTERM (CI's timeout, ``kill``, a closed terminal) stops every
process it started: the sandbox Asterisk, ``serve`` and the SIPp phones (issue #11 item 11).

It runs ``stop_run_victim.py`` in a pytest of its own on a second sandbox instance (base port
ASTERISK_CUBE_TEST_STOP_BASE_PORT, default this run's base + 2000: the run's own instance is
held by this session; instances 2000 apart do not collide while SIPp keeps to
base..base+999), sends SIGTERM once the victim holds all three, and checks that none of
them, nor any process naming the victim's instance or files, is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import children
import pytest
from sandbox_fixtures import TEST_BASE_PORT

from asterisk_cube.sandbox import SandboxInstance

VICTIM = Path(__file__).with_name("stop_run_victim.py")
BASE = int(os.environ.get("ASTERISK_CUBE_TEST_STOP_BASE_PORT", str(TEST_BASE_PORT + 2000)))


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def processes_naming(*needles: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles) and alive(int(entry.name)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def test_sigterm_stops_every_process_the_run_started(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the sandbox Asterisk needs root: run as root")
    pids_file, basetemp = tmp_path / "pids.json", tmp_path / "victim"
    env = {
        # not an xdist worker: its conftest must not swap in this worker's ports
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
        "ASTERISK_CUBE_TEST_BASE_PORT": str(BASE),
        "CUBE_STOP_RUN_PIDS": str(pids_file),
    }
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "pytest", str(VICTIM), "-q", "-p", "no:cacheprovider"]
    cmd += ["--basetemp", str(basetemp), "-o", "timeout=120"]
    instance = SandboxInstance(f"test-{BASE}", BASE)
    with open(tmp_path / "victim.log", "w") as log:
        run = children.track(
            subprocess.Popen(
                cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists() or not pids_file.read_text():
            assert run.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the victim run never got going"
            time.sleep(0.1)
        pids = json.loads(pids_file.read_text())
        assert all(alive(pid) for pid in pids.values()), pids
        run.send_signal(signal.SIGTERM)
        code = run.wait(90)
        out = (tmp_path / "victim.log").read_text()
        assert code != 0 and "KeyboardInterrupt" in out, out[-3000:]
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        assert not left, f"left running: {left}\n{out[-3000:]}"
        assert not processes_naming(str(basetemp), f"test-{BASE}"), out[-3000:]
        assert not instance.is_running()
    finally:  # whatever happened, leave nothing behind
        if run.poll() is None:
            run.kill()
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if instance.is_running():
            instance.down()
