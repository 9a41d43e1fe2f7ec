"""``asterisk-cube doctor``'s verdicts on what Asterisk answered (issue #15). Pure: the
adapter (``asterisk_cube/doctor.py``) asks ARI, AMI and the file system; these functions
read the answers and say ok, or the problem and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: modules serve needs (AMD: the dialer's answering-machine detection)
REQUIRED_MODULES = (
    "res_ari.so",
    "res_stasis.so",
    "app_stasis.so",
    "res_agi.so",
    "chan_pjsip.so",
    "res_musiconhold.so",
    "app_amd.so",
)

#: AMI actions the monitor (panel), ``dialplan install`` and the supervisor's
#: listen/whisper (originate) send
REQUIRED_AMI_ACTIONS = (
    "Ping",
    "Command",
    "DeviceStateList",
    "PJSIPShowEndpoints",
    "CoreShowChannels",
    "BridgeList",
    "Originate",
)

OK = "ok"
PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | problem
    detail: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def ok(check: str, detail: str = "") -> Finding:
    return Finding(check, OK, detail)


def problem(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, PROBLEM, detail, fix)


_MODULE_ROW = re.compile(r"^(\S+\.so)\s+.*?\s(Running|Not Running|Declined|Failed)\b", re.M)


def loaded_modules(module_show: str) -> set[str]:
    """Module names with status Running from ``module show`` output."""
    return {name for name, status in _MODULE_ROW.findall(module_show) if status == "Running"}


def modules_finding(module_show: str) -> Finding:
    missing = [mod for mod in REQUIRED_MODULES if mod not in loaded_modules(module_show)]
    if missing:
        return problem(
            "asterisk modules",
            "not loaded: " + ", ".join(missing),
            "install them (Debian: the asterisk package; app_amd: asterisk-modules) and "
            "`module load <name>` or remove their `noload` from modules.conf",
        )
    return ok("asterisk modules", ", ".join(REQUIRED_MODULES))


def ami_actions_finding(permitted: Iterable[str]) -> Finding:
    allowed = {a.lower() for a in permitted}
    missing = [a for a in REQUIRED_AMI_ACTIONS if a.lower() not in allowed]
    if missing:
        return problem(
            "ami permissions",
            "this AMI user may not send: " + ", ".join(missing),
            "in manager.conf give the user `write = system,call,originate,command,reporting` "
            "and `read = all` (or the classes of those actions), then `manager reload`",
        )
    return ok("ami permissions", "may send " + ", ".join(REQUIRED_AMI_ACTIONS))


def dialplan_finding(shown: str, dids: Iterable[str], path: str) -> Finding:
    """``dialplan show cube-inbound`` must exist and route every line's DID."""
    if "cube-inbound" not in shown or "There is no existence" in shown:
        return problem(
            "dialplan included",
            "Asterisk has no context cube-inbound",
            f'add `#include "{path}"` to extensions.conf, run `asterisk-cube dialplan install`',
        )
    missing = [did for did in dids if f"'{did}' =>" not in shown]
    if missing:
        return problem(
            "dialplan current",
            "lines missing from the loaded dialplan: " + ", ".join(missing),
            "run `asterisk-cube dialplan install` (after every `line add`/`remove`)",
        )
    return ok("dialplan current", "cube-inbound routes every line")


def caller_ids_finding(shown: str, caller_ids: Iterable[str]) -> Finding:
    """Each campaign's caller ID is a number customers call back: the loaded dialplan must
    route it into cube-inbound (a line with that DID), or the callback reaches nothing."""
    missing = [cid for cid in dict.fromkeys(caller_ids) if f"'{cid}' =>" not in shown]
    if missing:
        return problem(
            "campaign caller ids",
            "customers calling back reach no line: " + ", ".join(missing),
            "add a line with that DID (`asterisk-cube line add <number>`), then "
            "`asterisk-cube dialplan install`",
        )
    return ok("campaign caller ids", "every campaign caller ID routes to a line")


def file_current_finding(
    installed: str | None, rendered: str, path: str, check: str = "dialplan file"
) -> Finding:
    """A generated file (the dialplan; the inter-node trunk, ``check="node trunk"``) as
    ``dialplan install`` would write it now."""
    if installed is None:
        return problem(
            check,
            f"{path} does not exist or cannot be read",
            "run `asterisk-cube dialplan install`",
        )
    if installed != rendered:
        return problem(
            check,
            f"{path} differs from the configuration",
            "run `asterisk-cube dialplan install`",
        )
    return ok(check, path)


def sounds_finding(expected: Iterable[str], present: Iterable[str], target: str) -> Finding:
    """``expected`` and ``present``: prompt paths relative to the sounds folder, without
    the format's extension (``formal/closed``)."""
    have = set(present)
    missing = sorted(set(expected) - have)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        return problem(
            "sounds",
            f"{len(missing)} prompts missing in {target}: {shown}",
            f"run `asterisk-cube sounds install --dir {target}`",
        )
    return ok("sounds", target)


def outbound_dial_finding(dial: str) -> Finding:
    """``[dialplan] outbound_dial``: a technology/resource with ``{number}`` in it."""
    if "{number}" not in dial:
        return problem(
            "outbound dial string",
            f"{dial!r} has no {{number}}",
            "set [dialplan] outbound_dial, e.g. PJSIP/{number}@carrier",
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*/[^\s,()|&]+", dial):
        return problem(
            "outbound dial string",
            f"{dial!r} is not TECH/resource (no spaces, commas, parentheses)",
            "set [dialplan] outbound_dial, e.g. PJSIP/{number}@carrier",
        )
    return ok("outbound dial string", dial)


def summary(findings: Iterable[Finding]) -> Mapping[str, int]:
    items = list(findings)
    return {"ok": sum(f.ok for f in items), "problems": sum(not f.ok for f in items)}


_LOOPBACK = ("127.", "localhost", "::1")


def agi_address_finding(agi_host: str, asterisk_host: str) -> Finding:
    """The dialplan's ``AGI(agi://host:port/...)`` must point at serve from Asterisk's side:
    a loopback address only works when Asterisk runs on this host."""
    dialplan_host = "127.0.0.1" if agi_host in ("0.0.0.0", "::", "") else agi_host
    remote = not asterisk_host.startswith(_LOOPBACK)
    if remote and dialplan_host.startswith(_LOOPBACK):
        return problem(
            "fastagi address",
            f"Asterisk at {asterisk_host} would call FastAGI at {dialplan_host}, its own host",
            "set [agi] host to an address of this host that Asterisk can reach",
        )
    return ok("fastagi address", f"agi://{dialplan_host}")
