"""SIGTERM to an xdist run (./scripts/test runs two workers) reaches every worker, and
each runs its finalizers (the ones that stop SIPp, serve and the sandbox Asterisk); xdist
alone killed the workers without them when SIGINT is ignored (issue #11 item 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import children

VICTIM = Path(__file__).with_name("xdist_sigterm_victim.py")


def test_sigterm_to_the_controller_runs_every_workers_finalizers(tmp_path):
    out = tmp_path / "marks"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["CUBE_XDIST_PROBE_DIR"] = str(out)
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "pytest", str(VICTIM), "-n", "2", "-p", "no:cacheprovider"]
    cmd += ["-q", "--basetemp", str(tmp_path / "victim"), "-o", "timeout=150"]
    with open(tmp_path / "victim.log", "w") as log:
        run = children.track(
            subprocess.Popen(
                cmd,
                cwd=root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # as a background job of a non-interactive shell (`./scripts/test &`, CI
                # runners, nohup) has it: then xdist's own way of stopping a worker
                # (execnet interrupting its main thread, a simulated SIGINT) does nothing
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
            )
        )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("started-*"))) < 2:
            assert run.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the two workers never got going"
            time.sleep(0.1)
        run.send_signal(signal.SIGTERM)  # the controller only, as CI's timeout or kill
        run.wait(60)
    finally:
        children.stop_all()
    started = {p.name.split("-")[1] for p in out.glob("started-*")}
    finalized = {p.name.split("-")[1] for p in out.glob("finalized-*")}
    assert finalized == started, (tmp_path / "victim.log").read_text()[-3000:]
