"""Run SIPp phones against the sandbox Asterisk from tests.

    from sippkit import Sipp, caller, phone

    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=200) as agent:
        result = caller(sandbox, "100", tmp_path / "caller", caller_id="0612345678").run()
        assert result.ok, result.summary()
    assert agent.stop().stats["SuccessfulCall(C)"] == "1"

Every SIPp process gets pinned ports: its signalling port ``-p``, a media port ``-mp`` (SIPp
binds mp and mp+2) and a control port ``-cp`` (default 8888 would clash between parallel phones).
By default media ports are spaced 4 apart from base+3400 (``default_media_port``) and control =
signalling port + 2600, which keeps the sandbox's conventions (phones at base+100..base+259) clear
of Asterisk's RTP range base+1000..1999.
SIPp exits at once if its trace directory is missing: the helper creates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import children

SCENARIOS = Path(__file__).resolve().parent / "sipp"
UAC = SCENARIOS / "uac_call.xml"
UAC_CANCEL = SCENARIOS / "uac_cancel.xml"
UAS = SCENARIOS / "uas_phone.xml"
UAC_AUDIO = SCENARIOS / "uac_audio.xml"

# SIPp exit codes (sipp(1)).
EXIT_CODES = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command (calls may have been processed)",
    99: "normal exit without calls processed",
    253: "RTP validation failure",
    254: "fatal error binding a socket",
    255: "fatal error",
}


@dataclass
class SippResult:
    returncode: int
    stats: dict[str, str]  # the last row of the -trace_stat CSV, by column name
    trace_dir: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def count(self, column: str) -> int:
        try:
            return int(self.stats.get(column, "0") or 0)
        except ValueError:
            return 0

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.count("FailedCall(C)")

    @property
    def created(self) -> int:
        return self.count("TotalCallCreated")

    def messages(self) -> str:
        """The SIP message trace (when traced)."""
        path = self.trace_dir / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def errors(self) -> str:
        path = self.trace_dir / "errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def summary(self) -> str:
        """One paragraph for assertion messages: exit code, counts, the tail of the errors."""
        meaning = EXIT_CODES.get(self.returncode, "?")
        out = (
            f"sipp exit {self.returncode} ({meaning}); created {self.created}, "
            f"successful {self.successful}, failed {self.failed}; traces in {self.trace_dir}"
        )
        errors = self.errors().strip()
        output = (self.trace_dir / "sipp.out").read_text(errors="replace").strip()
        if errors:
            out += "\nerrors.log tail:\n" + errors[-1500:]
        if output and self.returncode not in (0, 97):
            out += "\nsipp output tail:\n" + output[-800:]
        return out


@dataclass
class Sipp:
    """One SIPp process (UAC or UAS) with pinned ports and its traces in ``trace_dir``."""

    scenario: Path
    local_port: int
    trace_dir: Path
    remote: str | None = None  # "127.0.0.1:PORT" (the UAC's target; a UAS can leave it out)
    service: str | None = None  # -s: the number a UAC calls
    sets: dict[str, Any] = field(default_factory=dict)  # -set name value
    calls: int | None = None  # -m: stop after this many calls
    rate: float | None = None  # -r: calls per second
    limit: int | None = None  # -l: concurrent calls
    media_port: int | None = None
    control_port: int | None = None
    timeout_s: float | None = None  # -timeout: SIPp quits after this long
    trace_messages: bool = True
    #: -trace_logs: the scenario's <log> actions go to trace_dir/logs.log (``SippResult.logs``)
    trace_logs: bool = False
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        media = self.media_port or default_media_port(self.local_port)
        control = self.control_port or self.local_port + 2600
        d = self.trace_dir
        cmd = ["sipp"]
        if self.remote:
            cmd.append(self.remote)
        cmd += ["-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.local_port)]
        cmd += ["-mp", str(media), "-cp", str(control), "-nostdin"]
        cmd += ["-trace_err", "-error_file", str(d / "errors.log")]
        cmd += ["-trace_stat", "-stf", str(d / "stats.csv"), "-fd", "1"]
        if self.trace_messages:
            cmd += ["-trace_msg", "-message_file", str(d / "messages.log")]
        if self.trace_logs:
            cmd += ["-trace_logs", "-log_file", str(d / "logs.log")]
        if self.service is not None:
            cmd += ["-s", self.service]
        for name, value in self.sets.items():
            cmd += ["-set", name, str(value)]
        if self.calls is not None:
            cmd += ["-m", str(self.calls)]
        if self.rate is not None:
            cmd += ["-r", str(self.rate)]
        if self.limit is not None:
            cmd += ["-l", str(self.limit)]
        if self.timeout_s is not None:
            cmd += ["-timeout", f"{self.timeout_s}s"]
        return cmd + list(self.extra_args)

    def start(self) -> Sipp:
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.trace_dir / "sipp.out", "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = children.track(
            subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped by us (children.py), also on Ctrl-C/SIGTERM
            )
        )
        out.close()
        return self

    def started(self, timeout: float = 5.0) -> Sipp:
        """Start and wait until SIPp has bound its ports (its first stats row appears)."""
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.trace_dir / "stats.csv").exists():
                return self
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("sipp exited at start:\n" + self._result().summary())
            time.sleep(0.02)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float = 60) -> SippResult:
        """Wait for SIPp to finish by itself (-m calls done); kill it after ``timeout``."""
        assert self.proc is not None, "not started"
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(
                f"sipp did not finish within {timeout} s:\n{self._result().summary()}"
            ) from None
        return self._result()

    def run(self, timeout: float = 60) -> SippResult:
        """Start and wait (a UAC with ``calls`` set)."""
        return self.start().wait(timeout)

    def stop(self, timeout: float = 5) -> SippResult:
        """Stop softly (SIGUSR1: SIPp finishes and writes its final stats), then kill."""
        assert self.proc is not None, "not started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._result()

    def _result(self) -> SippResult:
        code = self.proc.returncode if self.proc and self.proc.returncode is not None else -1
        return SippResult(code, read_stats(self.trace_dir / "stats.csv"), self.trace_dir)

    def __enter__(self) -> Sipp:
        if self.proc is None:
            self.started()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.stop()


def default_media_port(port: int) -> int:
    """SIPp binds media ports ``-mp`` and ``-mp + 2``: space phones 4 apart so neighbours
    (callers on adjacent carrier ports) never clash. Phone ports base+100..base+259 map to
    base+3400..base+4036, clear of Asterisk's RTP range and of the control ports (+2600).
    The base is the test run's (``ASTERISK_CUBE_TEST_BASE_PORT``) when the port is in its
    range, else the port's thousand: a base like 60800 must not map past 65535."""
    env = os.environ.get("ASTERISK_CUBE_TEST_BASE_PORT", "")
    base = int(env) if env.isdigit() and int(env) <= port < int(env) + 1000 else port - port % 1000
    return base + 3000 + (port - base) * 4


def read_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat CSV (';'-separated) as a dict."""
    if not path.exists():
        return {}
    with path.open(newline="", errors="replace") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


@contextlib.asynccontextmanager
async def off_the_loop(*sipps: Sipp) -> AsyncIterator[tuple[Sipp, ...]]:
    """``async with``: start these SIPp processes (each until bound) and at the end stop
    them, in a worker thread. An async test whose event loop also runs the product (the
    runtime in-process) must not start or stop SIPp on the loop: each start polls for up to
    5 s, each stop waits for SIPp to exit, and every call's events wait meanwhile (the loop
    watchdog caught the dialer day test's 32 phones holding the loop 0.7 s under load)."""
    stack = contextlib.ExitStack()

    def enter_all() -> None:
        for sipp in sipps:
            stack.enter_context(sipp)

    try:
        await asyncio.to_thread(enter_all)
        yield sipps
    finally:
        await asyncio.to_thread(stack.close)


# ---------------------------------------------------------------- ready-made phones for a sandbox


def caller(
    sandbox: Any,
    number: str,
    trace_dir: Path,
    *,
    caller_id: str = "0612345678",
    hold_ms: int = 1000,
    cancel_after_ms: int | None = None,
    slot: int = 0,
    calls: int = 1,
    withheld: bool = False,
    **kwargs: Any,
) -> Sipp:
    """A caller on the carrier trunk (port base+100+slot) dialling ``number``.

    It stays ``hold_ms`` after the answer, then hangs up (Asterisk may hang up first). With
    ``cancel_after_ms`` it instead gives up while it rings: CANCEL that long after 100 Trying
    (the call then counts as successful only if Asterisk had not answered). ``withheld``:
    From anonymous, ``caller_id`` only in P-Asserted-Identity with ``Privacy: id``."""
    if not 0 <= slot < len(sandbox.carrier_ports):
        raise ValueError(f"slot must be 0..{len(sandbox.carrier_ports) - 1}")
    if cancel_after_ms is None:
        scenario, sets, extra = UAC, {"caller": caller_id, "hold_ms": hold_ms}, []
        if withheld:
            sets["privacy"] = "id"
    else:
        if withheld:
            raise ValueError("the cancelling caller cannot withhold its number")
        scenario, sets = UAC_CANCEL, {"caller": caller_id, "ring_ms": cancel_after_ms}
        extra = ["-pause_msg_ign"]
    kwargs["extra_args"] = [*extra, *kwargs.get("extra_args", [])]
    return Sipp(
        scenario,
        sandbox.carrier_ports[slot],
        trace_dir,
        remote=f"127.0.0.1:{sandbox.sip_port}",
        service=number,
        sets=sets,
        calls=calls,
        **kwargs,
    )


def talking_caller(
    sandbox: Any,
    number: str,
    trace_dir: Path,
    *,
    caller_id: str = "0612345678",
    slot: int = 0,
    **kwargs: Any,
) -> Sipp:
    """A caller on the carrier trunk that plays a 440 Hz tone as RTP (PCMU) once answered
    and waits for the other side to hang up (the call fails if nobody does in 2 minutes)."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    audio = trace_dir / "tone.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "u-law",
            str(audio),
            "synth",
            "2",
            "sine",
            "440",
        ],
        check=True,
    )
    scenario = trace_dir / "uac_audio.xml"
    scenario.write_text(UAC_AUDIO.read_text().replace("@AUDIO@", str(audio)))
    return Sipp(
        scenario,
        sandbox.carrier_ports[slot],
        trace_dir,
        remote=f"127.0.0.1:{sandbox.sip_port}",
        service=number,
        sets={"caller": caller_id},
        calls=1,
        **kwargs,
    )


def phone(
    sandbox: Any,
    port: int,
    trace_dir: Path,
    *,
    answer_ms: int = 0,
    talk_ms: int = 0,
    **kwargs: Any,
) -> Sipp:
    """A phone (UAS) on ``port``: an agent (``sandbox.agent_port(n)``) or a customer
    (``sandbox.customer_ports[0]``). Use as a context manager: it starts, waits until bound,
    and stops softly on exit."""
    return Sipp(
        UAS,
        port,
        trace_dir,
        remote=f"127.0.0.1:{sandbox.sip_port}",
        sets={"answer_ms": answer_ms, "talk_ms": talk_ms},
        **kwargs,
    )


def sipp_available() -> bool:
    return any(
        os.access(os.path.join(p, "sipp"), os.X_OK) for p in os.environ["PATH"].split(os.pathsep)
    )
