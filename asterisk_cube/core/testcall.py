"""The demo's test call, its pure part (issue #16): where a call goes and whether that is
well-formed. Placing it (SIPp) is :mod:`asterisk_cube.demo.testcall`; ``config.py`` checks
``[demo] test_call_*`` with :meth:`CallTarget.check`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .numbers import InvalidNumber, check_typed

DEFAULT_CALLER_ID = "+4791234567"


class DemoCallError(ValueError):
    """A test call that cannot be placed; the message says why, in one line; ``part``
    names the bad part (did, sip, port, from: the ``[demo] test_call_*`` setting)."""

    def __init__(self, message: str, part: str = "") -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class CallTarget:
    """Where a test call goes: Asterisk's SIP ``host:port`` of the carrier trunk, the local
    UDP port the caller sends from (one the trunk accepts), the line's number, the caller."""

    sip: str
    local_port: int
    did: str
    caller_id: str = DEFAULT_CALLER_ID

    def check(self) -> CallTarget:
        """Self, when every part is well-formed; else :class:`DemoCallError`."""
        if not self.did.isdigit():
            raise DemoCallError(f"line {self.did!r}: give the line's number (digits)", "did")
        try:
            check_typed(self.caller_id, "caller number")
        except InvalidNumber as exc:
            raise DemoCallError(str(exc), "from") from None
        host, sep, port = self.sip.rpartition(":")
        if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            raise DemoCallError(f"SIP address {self.sip!r} is not host:port", "sip")
        if not 0 < self.local_port < 65536:
            raise DemoCallError(
                f"local port {self.local_port} is not a port number 1-65535", "port"
            )
        return self


def from_settings(demo: Any) -> CallTarget | None:
    """The test call of ``[demo]`` (config.DemoSettings), or None when ``test_call_did``
    is empty (a production server)."""
    if not demo.test_call_did:
        return None
    return CallTarget(
        demo.test_call_sip, demo.test_call_port, demo.test_call_did, demo.test_call_from
    )


def caller_channels(concise: str, did: str, caller_id: str) -> list[str]:
    """The carrier-trunk channels of a test call to ``did`` from ``caller_id``, read from
    Asterisk's ``core show channels concise`` (``Channel!Context!Exten!...!CallerID!...``).
    Stopping the call hangs them up in Asterisk, which sends the caller its BYE: SIPp
    cannot be told to send one, and a SIPp killed without it leaves the caller queued."""
    found = []
    for line in concise.splitlines():
        fields = line.split("!")
        mine = len(fields) > 7 and fields[2] == did and fields[7] == caller_id
        if mine and fields[0].startswith("PJSIP/carrier-"):
            found.append(fields[0])
    return found
