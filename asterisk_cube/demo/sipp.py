"""SIPp phones and callers for the demo (traffic simulator, test call).

The scenarios in ``demo/sipp/`` are copies of ``tests/sipp/`` (the package must not import
from ``tests/``, and the wheel has to carry them); the port conventions are the sandbox's
(``asterisk_cube/sandbox.py``): callers on the carrier trunk at base+100..119, customers at
base+150, agent NN's phone at base+200+NN. SIPp binds a media port ``-mp`` and ``-mp+2``
and a control port ``-cp``: as ``tests/sippkit.py`` does, media ports sit 4 apart from
base+3000 and control ports at the phone's port + 2600, clear of Asterisk's RTP range.

Every SIPp process is started in its own session (a terminal's Ctrl-C goes to the demo,
which stops them softly) and with a parent-death signal: if the demo process is killed
outright, the kernel sends SIPp SIGTERM, so no phone outlives the demo.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SCENARIOS = Path(__file__).resolve().parent / "sipp"
UAC = SCENARIOS / "uac_call.xml"
UAC_CANCEL = SCENARIOS / "uac_cancel.xml"
UAS = SCENARIOS / "uas_phone.xml"
CUSTOMERS = SCENARIOS / "uas_customer.xml"

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        raise RuntimeError("sipp is not installed (Debian: apt-get install sip-tester)")
    return found


def media_port(port: int) -> int:
    """SIPp's media port for a phone on ``port`` (see the module docstring)."""
    return port - port % 1000 + 3000 + (port % 1000) * 4


@dataclass
class SippProcess:
    """One SIPp process with pinned ports; its output goes to ``log`` (or nowhere)."""

    scenario: Path
    local_port: int
    remote: str
    service: str | None = None
    sets: dict[str, object] = field(default_factory=dict)
    calls: int | None = None
    timeout_s: float | None = None
    extra: list[str] = field(default_factory=list)
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sipp_binary(), self.remote, "-sf", str(self.scenario), "-i", "127.0.0.1"]
        cmd += ["-p", str(self.local_port), "-mp", str(media_port(self.local_port))]
        cmd += ["-cp", str(self.local_port + 2600), "-nostdin"]
        if self.service is not None:
            cmd += ["-s", self.service]
        for name, value in self.sets.items():
            cmd += ["-set", name, str(value)]
        if self.calls is not None:
            cmd += ["-m", str(self.calls)]
        if self.timeout_s is not None:
            cmd += ["-timeout", f"{int(self.timeout_s)}s"]  # a backstop: never left behind
        return cmd + self.extra

    def start(self) -> SippProcess:
        out: int | IO[bytes] = subprocess.DEVNULL
        handle = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.log, "ab")  # noqa: SIM115 - closed once the child has it
            out = handle
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if handle is not None:
                handle.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 3.0) -> int | None:
        """Stop softly (SIGUSR1: SIPp ends its calls), then kill; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def caller(
    sip: str,
    local_port: int,
    number: str,
    caller_id: str,
    *,
    hold_ms: int,
    cancel_after_ms: int | None = None,
    log: Path | None = None,
) -> SippProcess:
    """One call on the carrier trunk to ``number`` from ``caller_id``: it stays ``hold_ms``
    after the answer (Asterisk answers at once: waiting plus talking), then hangs up; an
    agent hanging up first ends it too. ``cancel_after_ms``: gives up while ringing."""
    if cancel_after_ms is None:
        scenario, sets, extra = UAC, {"caller": caller_id, "hold_ms": hold_ms}, []
    else:
        scenario, sets = UAC_CANCEL, {"caller": caller_id, "ring_ms": cancel_after_ms}
        extra = ["-pause_msg_ign"]
    timeout = (hold_ms if cancel_after_ms is None else cancel_after_ms) / 1000 + 30
    return SippProcess(
        scenario, local_port, sip, number, sets, calls=1, timeout_s=timeout, extra=extra, log=log
    )


def phone(
    sip: str, local_port: int, *, answer_ms: int = 0, talk_ms: int = 0, log: Path | None = None
) -> SippProcess:
    """A phone that answers every call after ``answer_ms`` and waits for Asterisk's BYE
    (``talk_ms`` 0) or hangs up after ``talk_ms``."""
    return SippProcess(
        UAS, local_port, sip, sets={"answer_ms": answer_ms, "talk_ms": talk_ms}, log=log
    )


def customers(sip: str, local_port: int, *, log: Path | None = None) -> SippProcess:
    """Every customer of the outbound campaign: behaviour from the dialled number
    (``uas_customer.xml``: B RR TT SS)."""
    return SippProcess(CUSTOMERS, local_port, sip, log=log)
