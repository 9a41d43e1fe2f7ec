"""Not collected by a normal run (no ``test_`` prefix): ``test_stopping_a_run.py`` runs it in
a pytest of its own and stops that run with SIGTERM while it holds a sandbox Asterisk, a
``serve`` and a SIPp phone. The pids go to the file named by ``CUBE_STOP_RUN_PIDS``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from cubeproc import Serve
from sippkit import phone


async def test_a_run_that_is_stopped(sandbox, tmp_path):
    srv = Serve.on_sandbox(sandbox, tmp_path)
    srv.start()  # no finalizer of its own: children.py must stop it
    # SIPp's ports inside base..base+999, as in test_dialer_e2e.py (clear of other instances)
    ports = {"control_port": sandbox.base_port + 301, "media_port": sandbox.base_port + 420}
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", **ports) as agent:
        pids = {"asterisk": sandbox.pid(), "serve": srv.proc.pid, "sipp": agent.proc.pid}
        Path(os.environ["CUBE_STOP_RUN_PIDS"]).write_text(json.dumps(pids))
        await asyncio.Event().wait()  # until the run is stopped
