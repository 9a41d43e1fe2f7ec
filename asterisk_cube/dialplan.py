"""Render the dialplan from the database configuration (jinja2 templates in ``dialplan/``).

The output is one file the admin includes from extensions.conf. It is written
atomically, then Asterisk reloads it over AMI; a bad template never leaves a
half-written file behind.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from asterisk_cube import __version__
from asterisk_cube.config import Settings
from asterisk_cube.core import trunk
from asterisk_cube.core.numbers import dialled_forms, normalize
from asterisk_cube.db import models as m

_UNSAFE = re.compile(r"[^\w .:@/+-]", re.UNICODE)


def template_dir() -> Path:
    """``dialplan/`` next to the package (source checkout), else the installed data dir."""
    here = Path(__file__).resolve().parent.parent / "dialplan"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "asterisk-cube" / "dialplan"


def dp_comment(text: str) -> str:
    """Make free text safe inside a dialplan comment or NoOp (no ; , ( ) newlines)."""
    return _UNSAFE.sub("_", text or "")[:80]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(template_dir()),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # dialplan, not HTML; values are validated or dp_comment-ed
    )
    env.filters["dp_comment"] = dp_comment
    return env


@dataclass(frozen=True)
class CallbackNumber:
    """An outbound campaign's caller ID routed into the Stasis app (F-I3): ``number`` as
    the campaign has it, ``aliases`` the other forms a trunk may deliver it in."""

    campaign_id: int
    campaign: str
    number: str
    aliases: tuple[str, ...]


def callback_numbers(lines: list[m.Line], campaigns: list[m.Campaign]) -> list[CallbackNumber]:
    """The caller IDs of outbound campaigns that no line already routes, compared in E.164
    in the campaign's region; a number shared by two campaigns goes to the first by id (the
    caller's open contact decides the campaign anyway, see ``Distributor.classify``)."""
    out: list[CallbackNumber] = []
    taken = {ln.did for ln in lines}
    for campaign in sorted(campaigns, key=lambda c: c.id):
        if campaign.direction != m.Direction.OUTBOUND or not campaign.caller_id:
            continue
        region = campaign.phone_region or "NO"
        e164 = normalize(campaign.caller_id, region)
        if e164 is None or any(normalize(did, region) == e164 for did in taken):
            continue
        forms = [f for f in dialled_forms(campaign.caller_id, region) if f not in taken]
        if campaign.caller_id not in forms:
            continue
        taken.update(forms)
        aliases = tuple(f for f in forms if f != campaign.caller_id)
        out.append(CallbackNumber(campaign.id, campaign.name, campaign.caller_id, aliases))
    return out


def render(session: Session, settings: Settings) -> str:
    lines = session.scalars(
        select(m.Line)
        .options(selectinload(m.Line.client), selectinload(m.Line.campaign))
        .order_by(m.Line.did)
    ).all()
    campaigns = session.scalars(
        select(m.Campaign).where(
            m.Campaign.direction == m.Direction.OUTBOUND, m.Campaign.caller_id.is_not(None)
        )
    ).all()
    agents = session.scalars(
        select(m.Agent).where(m.Agent.endpoint.is_not(None)).order_by(m.Agent.username)
    ).all()
    return (
        _environment()
        .get_template("asterisk-cube.conf.j2")
        .render(
            version=__version__,
            path=settings.dialplan.path,
            lines=lines,
            callbacks=callback_numbers(list(lines), list(campaigns)),
            agents=agents,
            # a node with a trunk (a [node] sip_address): its agents' phones, for the
            # other nodes; a trunk leg whose Stasis app is down is hung up, never answered
            # by the fallback (the other node would take that for the agent answering)
            crossnode_phones=trunk.reachable_phones(
                (a.endpoint for a in agents), settings.node_name
            )
            if settings.node.sip_address
            else [],
            app=settings.ari.app,
            agi_host=settings.agi.host
            if settings.agi.host not in ("0.0.0.0", "::")
            else "127.0.0.1",
            agi_port=settings.agi.port,
            outbound_dial=settings.dialplan.outbound_dial,
            fallback_application=settings.dialplan.fallback_application,
            fallback_announcement=settings.dialplan.fallback_announcement,
        )
    )


def record_sip_address(session: Session, settings: Settings, now: dt.datetime) -> None:
    """Store this node's ``[node] sip_address`` in its ``nodes`` row (the other nodes'
    trunks are generated from it). A node that never ran ``serve`` gets a row whose lease
    has already expired (a node that is not running)."""
    address = settings.node.sip_address or None
    row = session.get(m.Node, settings.node_name)
    if row is None:
        if address is None:
            return
        row = m.Node(
            name=settings.node_name,
            host=socket.gethostname(),
            pid=0,
            started_at=now,
            heartbeat_at=now,
            lease_until=now,
        )
        session.add(row)
    row.sip_address = address


def render_trunk(session: Session, settings: Settings) -> str | None:
    """The trunk's PJSIP config (one endpoint per other node with a SIP address), or None
    when this node has no ``[node] sip_address`` (a single node: no trunk)."""
    if not settings.node.sip_address:
        return None
    rows = session.execute(select(m.Node.name, m.Node.sip_address)).all()
    me = settings.node_name
    return trunk.render_pjsip(me, trunk.peers([(r[0], r[1]) for r in rows], me))


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename. A path that exists
    and is not a regular file (a device such as /dev/null, a directory) is refused: the
    rename would replace it."""
    target = Path(path)
    if target.exists() and not target.is_file():
        raise IsADirectoryError(21, "not a regular file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DialplanInstallError(RuntimeError):
    pass


def install(
    text: str,
    settings: Settings,
    path: str | None = None,
    reload: bool = True,
    trunk_text: str | None = None,
) -> str:
    """Write the rendered dialplan (and the inter-node trunk's PJSIP config, if any) and
    have Asterisk reload them; returns what was done."""
    from asterisk_cube.ami.commands import AmiError, run_command

    target = path or settings.dialplan.path
    written = [target]
    try:
        write_atomically(target, text)
        if trunk_text is not None:
            write_atomically(settings.node.trunk_path, trunk_text)
            written.append(settings.node.trunk_path)
    except OSError as exc:
        raise DialplanInstallError(
            f"cannot write {exc.filename or target}: {exc.strerror}"
        ) from None
    if not reload:
        return f"wrote {', '.join(written)}"
    endpoints = ""
    try:
        if trunk_text is not None:
            run_command(settings.ami, "module reload res_pjsip.so")
            endpoints = run_command(settings.ami, "pjsip show endpoints")
        run_command(settings.ami, "dialplan reload")
        shown = run_command(settings.ami, "dialplan show cube-inbound")
    except AmiError as exc:
        raise DialplanInstallError(
            f"{exc} (the file is written; reload Asterisk's dialplan yourself)"
        ) from None
    if "cube-inbound" not in shown:
        raise DialplanInstallError(
            "Asterisk did not load context cube-inbound: "
            f"is `#include {target}` in extensions.conf?"
        )
    missing = [
        name
        for name in re.findall(r"^\[(cube-node-[^\]]+)\]", trunk_text or "", re.M)
        if not re.search(rf"Endpoint:\s+{re.escape(name)}\s", endpoints)
    ]
    if missing:
        raise DialplanInstallError(
            f"Asterisk did not load the trunk endpoint {missing[0]}: "
            f"is `#include {settings.node.trunk_path}` in pjsip.conf?"
        )
    return f"wrote {', '.join(written)}; dialplan reloaded in Asterisk"
