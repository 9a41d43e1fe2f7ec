"""A real ``asterisk-cube serve`` under attack from loopback (tests/security, bench).

:class:`Target` starts serve (no Asterisk needed: ARI just retries) with its own ports and
data dir, and measures from the outside what the call path would feel: a FastAGI ``ping``
session's round trip (the same loop runs the Stasis app) and ``GET /health``; memory from
``/proc/<pid>/status`` (``VmHWM`` is the peak RSS).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLI = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def agi_env(script: str) -> bytes:
    lines = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_channel": "PJSIP/probe-00000001",
        "agi_uniqueid": "1730000000.1",
        "agi_callerid": "4791234567",
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


def agi_ping(port: int, timeout: float = 30.0) -> float:
    """One FastAGI ``ping`` session played as Asterisk; seconds from connect to the end."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(agi_env("ping"))
        reader = sock.makefile("rb")
        line = reader.readline()
        assert line.startswith(b"SET VARIABLE"), line
        sock.sendall(b"200 result=1\n")
        assert reader.read() == b""  # the route is done: the server closes
    return time.monotonic() - started


def read_status(pid: int) -> dict[str, int]:
    """``VmRSS`` / ``VmHWM`` (KiB) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Target:
    """One serve process; ``env`` extra settings (``ASTERISK_CUBE_*``)."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        (workdir / "cube.toml").write_text("")
        self.env = dict(os.environ)
        self.web_port, self.agi_port = free_port(), free_port()
        self.env.update(
            ASTERISK_CUBE_CONFIG=str(workdir / "cube.toml"),
            ASTERISK_CUBE_DATA_DIR=str(workdir),
            ASTERISK_CUBE_WEB_PORT=str(self.web_port),
            ASTERISK_CUBE_AGI_PORT=str(self.agi_port),
            ASTERISK_CUBE_ARI_URL=f"http://127.0.0.1:{free_port()}",  # nobody: it retries
            ASTERISK_CUBE_AMI_PORT=str(free_port()),
            **env,
        )
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.proc: subprocess.Popen | None = None
        self.cli("db", "upgrade")

    def cli(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [*CLI, *args], env=self.env, input=stdin, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, preexec_fn=None) -> Target:
        with open(self.workdir / "serve.log", "w") as log:
            self.proc = subprocess.Popen(
                [*CLI, "serve"], env=self.env, stdout=log, stderr=log, preexec_fn=preexec_fn
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.health(timeout=1)
                return self
            except OSError:
                assert self.proc.poll() is None, self.log()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def health(self, timeout: float = 30.0) -> float:
        """Seconds for ``GET /health`` (raises OSError when refused or timed out)."""
        started = time.monotonic()
        with urllib.request.urlopen(self.url + "/health", timeout=timeout) as resp:
            json.load(resp)
        return time.monotonic() - started

    def status(self) -> dict[str, int]:
        return read_status(self.proc.pid)

    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
