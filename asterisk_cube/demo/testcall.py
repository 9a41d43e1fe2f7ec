"""The demo's test call (issue #16): a SIPp caller on the sandbox's carrier trunk that rings
one line for the person trying the demo, so they can take it at agent01's desk (the browser
phone or a SIP phone). ``asterisk-cube demo call`` and the desk's *Test call* button
(web/testcall.py) both place it here.

Where it goes comes from ``[demo]`` (config.py: ``test_call_did``, ``test_call_sip``,
``test_call_port``, ``test_call_from``; the pure part, :class:`CallTarget`, is
``core/testcall.py``): ``demo run`` / ``demo env`` set them for the demo's sandbox
(:func:`settings_env`); a production config leaves ``test_call_did`` empty, and then the
desk shows no button and never imports this module.

The caller echoes the RTP it gets (SIPp ``-rtp_echo``): whoever takes the call hears
their own voice, which proves the audio both ways, and Asterisk counts RTP on both legs.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Protocol

from asterisk_cube.core.testcall import DEFAULT_CALLER_ID, CallTarget, DemoCallError

from . import sipp

#: base+119 of the sandbox: the carrier-trunk port of the test call (the traffic
#: simulator's callers use base+100..118)
TEST_CALL_SLOT = 19
DEFAULT_HOLD_S = 300  # the caller stays at most this long (waiting and talking)


class Sandbox(Protocol):
    """What a test call needs of a :class:`asterisk_cube.sandbox.SandboxInstance` (not
    imported: the sandbox module imports the web package, which imports this one)."""

    @property
    def sip_port(self) -> int: ...

    @property
    def carrier_ports(self) -> range: ...


def target_for(instance: Sandbox, did: str, caller_id: str = DEFAULT_CALLER_ID) -> CallTarget:
    """A test call to ``did`` on the sandbox ``instance``'s carrier trunk (port base+119)."""
    sip = f"127.0.0.1:{instance.sip_port}"
    return CallTarget(sip, instance.carrier_ports[TEST_CALL_SLOT], did, caller_id)


def settings_env(instance: Sandbox, did: str) -> dict[str, str]:
    """The ``[demo]`` settings (as environment) that point test calls at ``instance``."""
    target = target_for(instance, did)
    return {
        "ASTERISK_CUBE_DEMO_TEST_CALL_DID": target.did,
        "ASTERISK_CUBE_DEMO_TEST_CALL_SIP": target.sip,
        "ASTERISK_CUBE_DEMO_TEST_CALL_PORT": str(target.local_port),
    }


def port_busy(port: int) -> bool:
    """Whether the caller's UDP port is taken (a test call from ``demo call`` or the desk
    already under way): SIPp would not start on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def place(
    target: CallTarget, *, hold_s: int = DEFAULT_HOLD_S, log: Path | None = None
) -> sipp.SippProcess:
    """Start the caller (checked first; refused while the port is busy). It stays until
    the other side hangs up, at most ``hold_s`` after Asterisk answers, or until
    :meth:`~asterisk_cube.demo.sipp.SippProcess.stop`. Start it from a thread that lives as
    long as the call (the main or the event-loop thread): SIPp's parent-death signal fires
    when the *thread* that started it ends."""
    target.check()
    if port_busy(target.local_port):
        raise DemoCallError(f"a test call is already under way (port {target.local_port} in use)")
    proc = sipp.caller(
        target.sip, target.local_port, target.did, target.caller_id, hold_ms=hold_s * 1000, log=log
    )
    proc.extra.append("-rtp_echo")  # you hear yourself: the audio works both ways
    return proc.start()
