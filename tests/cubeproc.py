"""`asterisk-cube serve` as a real process for end-to-end tests (start, SIGKILL, restart)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import children

CLI = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]
# several commands in one interpreter, in order, stopping at the first that fails: each
# start of Python and the CLI costs about a second on a busy machine
BATCH = [
    sys.executable,
    "-c",
    "import json, sys\n"
    "from asterisk_cube.cli import cli\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    code = cli.main(args, prog_name='asterisk-cube', standalone_mode=False)\n"
    "    if isinstance(code, int) and code:\n"  # ctx.exit(n) returns n here
    "        sys.exit(f'{args}: exit code {code}')\n",
]


class Serve:
    """One `asterisk-cube serve` process; start/kill/restart keep the same data dir."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """From the environment at the time of asking: a test may change the web port
        after ``on_sandbox`` (a second node), and must then reach that one."""
        return f"http://127.0.0.1:{self.env['ASTERISK_CUBE_WEB_PORT']}"

    @classmethod
    def on_sandbox(cls, sandbox, workdir: Path, *setup: Sequence[str]) -> Serve:
        """A serve for the sandbox instance, its data and empty config in ``workdir``, with
        the database schema in place and the CLI commands ``setup`` run (not started)."""
        env = dict(os.environ)
        env.update(sandbox.env())
        env.update(
            ASTERISK_CUBE_DATA_DIR=str(workdir), ASTERISK_CUBE_CONFIG=str(workdir / "c.toml")
        )
        (workdir / "c.toml").write_text("")
        srv = cls(env, workdir)
        srv.cli_batch(["db", "upgrade"], *setup)
        return srv

    def cli(self, *args: str) -> str:
        out = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def cli_batch(self, *commands: Sequence[str]) -> str:
        """Run CLI commands in one process, in order; their output. Fails at the first
        command that fails."""
        out = subprocess.run(
            [*BATCH, json.dumps([list(c) for c in commands])],
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, f"{commands}: {out.stderr}"
        return out.stdout

    def start(self) -> None:
        self.starts += 1
        with open(self.logdir / f"serve{self.starts}.log", "w") as log:
            self.proc = children.track(
                subprocess.Popen(
                    [*CLI, "serve"], env=self.env, stdout=log, stderr=log, start_new_session=True
                )
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                    if json.load(resp)["ari"]["connected"]:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)
        raise AssertionError("serve did not connect to ARI:\n" + self.log())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def log(self) -> str:
        return (self.logdir / f"serve{self.starts}.log").read_text()[-4000:]
