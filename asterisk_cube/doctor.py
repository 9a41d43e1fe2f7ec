"""``asterisk-cube doctor``: check the Asterisk (and database, SMTP) serve is pointed at.

Asks ARI, AMI, the database and the file system; :mod:`asterisk_cube.core.doctor` turns
the answers into findings (ok, or the problem and how to fix it). Credentials are never
printed: errors go through :func:`asterisk_cube.redact.redact`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.ami.commands import AmiRefused, AmiUnreachable, ami_session, command_reply
from asterisk_cube.config import AmiSettings, Settings
from asterisk_cube.core import doctor as d
from asterisk_cube.redact import redact
from asterisk_cube.sounds import (
    DEFAULT_SOUNDS_DIR,
    SoundsError,
    install_sounds,
    packaged_sounds_dir,
    prompt_names,
)

__all__ = ["DEFAULT_SOUNDS_DIR", "SoundsError", "install_sounds", "run_checks"]


# --------------------------------------------------------------------------- ARI


def check_ari(settings: Settings, timeout: float = 5.0) -> list[d.Finding]:
    ari = settings.ari
    base = ari.url.rstrip("/") + "/ari"
    try:
        with httpx.Client(auth=(ari.username, ari.password), timeout=timeout) as client:
            info = client.get(f"{base}/asterisk/info")
            if info.status_code == 401:
                return [
                    d.problem(
                        "ari login",
                        f"ARI at {redact(ari.url)} refused user {ari.username!r} "
                        "(wrong password or no such user)",
                        "make [ari] username/password match a user in ari.conf",
                    )
                ]
            info.raise_for_status()
            apps = client.get(f"{base}/applications")
            apps.raise_for_status()
    except httpx.HTTPError as exc:
        return [
            d.problem(
                "ari login",
                f"ARI at {redact(ari.url)} not reachable: {redact(type(exc).__name__)}",
                "enable http.conf and ari.conf in Asterisk; check [ari] url",
            )
        ]
    found = [d.ok("ari login", f"{redact(ari.url)} as {ari.username!r}")]
    names = {app.get("name") for app in apps.json()}
    if ari.app in names:
        found.append(d.ok("stasis app", f"{ari.app!r} registered (serve is connected)"))
    else:
        # before the first `serve` nothing registers it: that is fine, say so
        found.append(d.ok("stasis app", f"{ari.app!r} not registered yet: serve registers it"))
    return found


# --------------------------------------------------------------------------- AMI


async def _ami(ami: AmiSettings, timeout: float) -> tuple[dict, str, str]:
    """Log in; return (ListCommands reply, `module show`, `dialplan show`); raises
    AmiUnreachable or AmiRefused (ami/commands.py)."""

    async def command(text: str) -> str:
        accepted, output = await command_reply(manager, text, timeout)
        return output if accepted else ""

    async with ami_session(ami, timeout) as manager:
        commands = await asyncio.wait_for(manager.send_action({"Action": "ListCommands"}), timeout)
        commands = commands[0] if isinstance(commands, list) else commands
        return (
            dict(commands),
            await command("module show"),
            await command("dialplan show cube-inbound"),
        )


def check_ami(
    settings: Settings, dids: list[str], caller_ids: Sequence[str] = (), timeout: float = 5.0
) -> list[d.Finding]:
    ami = settings.ami
    where = f"{ami.host}:{ami.port}"
    try:
        commands, modules, shown = asyncio.run(_ami(ami, timeout))
    except AmiUnreachable as exc:
        return [
            d.problem(
                "ami login",
                f"AMI at {where} not reachable: {redact(exc.reason)}",
                "enable manager.conf ([general] enabled = yes, port) and check [ami] host/port",
            )
        ]
    except AmiRefused:
        return [
            d.problem(
                "ami login",
                f"AMI at {where} refused user {ami.username!r}",
                "make [ami] username/secret match a user in manager.conf (and its permit)",
            )
        ]
    found = [d.ok("ami login", f"{where} as {ami.username!r}"), d.ami_actions_finding(commands)]
    if not modules:
        found.append(
            d.problem(
                "asterisk modules",
                "AMI may not run CLI commands",
                "give the AMI user the `command` write class",
            )
        )
        return found
    found.append(d.modules_finding(modules))
    found.append(d.dialplan_finding(shown, dids, settings.dialplan.path))
    if caller_ids:
        found.append(d.caller_ids_finding(shown, caller_ids))
    return found


# --------------------------------------------------------------------------- the rest


def check_database(settings: Settings) -> tuple[d.Finding, sessionmaker[Session] | None]:
    from asterisk_cube.config import ConfigError
    from asterisk_cube.db.session import (
        make_engine,
        make_sessionmaker,
        require_database,
        schema_status,
    )

    try:
        require_database(settings.database_url)  # never creates an empty database
    except ConfigError as exc:
        return (
            d.problem("database", redact(str(exc)), "run `asterisk-cube db upgrade`"),
            None,
        )
    try:
        engine = make_engine(settings.database_url)
        current, head = schema_status(engine)
    except Exception as exc:
        return (
            d.problem(
                "database",
                f"cannot open {redact(settings.database_url)}: {redact(type(exc).__name__)}",
                "check [database] url; run `asterisk-cube db upgrade`",
            ),
            None,
        )
    if current != head:
        return (
            d.problem(
                "database",
                f"schema at {current or 'nothing'}, this version needs {head}",
                "run `asterisk-cube db upgrade`",
            ),
            None,
        )
    return d.ok("database", f"schema at {head}"), make_sessionmaker(engine)


def check_smtp(settings: Settings, timeout: float = 5.0) -> d.Finding:
    smtp = settings.smtp
    try:
        with socket.create_connection((smtp.host, smtp.port), timeout=timeout):
            pass
    except OSError as exc:
        return d.problem(
            "smtp",
            f"{smtp.host}:{smtp.port} not reachable ({exc.strerror or exc}): notes are not mailed",
            "set [smtp] host/port to your mail relay",
        )
    return d.ok("smtp", f"{smtp.host}:{smtp.port}")


def _file_current(path: str, rendered: str, check: str) -> d.Finding:
    try:
        installed: str | None = Path(path).read_text()
    except OSError:
        installed = None
    return d.file_current_finding(installed, rendered, path, check)


def run_checks(settings: Settings, sounds_dir: str = DEFAULT_SOUNDS_DIR) -> list[d.Finding]:
    from sqlalchemy import func, select

    from asterisk_cube import dialplan as dp
    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import transaction

    findings: list[d.Finding] = []
    db_finding, sessions = check_database(settings)
    findings.append(db_finding)
    dids: list[str] = []
    caller_ids: list[str] = []
    rendered = trunk = None
    mails = 0
    if sessions is not None:
        with transaction(sessions) as s:
            dids = list(s.scalars(select(m.Line.did).order_by(m.Line.did)))
            caller_ids = list(
                s.scalars(
                    select(m.Campaign.caller_id)
                    .where(m.Campaign.caller_id.is_not(None), m.Campaign.caller_id != "")
                    .where(m.Campaign.direction == m.Direction.OUTBOUND)
                    .order_by(m.Campaign.caller_id)
                )
            )
            rendered = dp.render(s, settings)
            trunk = dp.render_trunk(s, settings)  # None: no [node] sip_address, no trunk
            mails = s.scalar(select(func.count()).select_from(m.NoteRecipient)) or 0
    findings += check_ari(settings)
    findings += check_ami(settings, dids, caller_ids)
    if rendered is not None:
        path = Path(settings.dialplan.path)
        try:
            installed = path.read_text()
        except OSError:
            installed = None
        findings.append(d.file_current_finding(installed, rendered, str(path)))
    if trunk is not None:  # several nodes (docs/operations.md, "The trunk between nodes")
        findings.append(_file_current(settings.node.trunk_path, trunk, "node trunk"))
    findings.append(
        d.agi_address_finding(settings.agi.host, urlsplit(settings.ari.url).hostname or "")
    )
    findings.append(d.outbound_dial_finding(settings.dialplan.outbound_dial))
    findings.append(
        d.sounds_finding(
            prompt_names(packaged_sounds_dir()), prompt_names(Path(sounds_dir)), sounds_dir
        )
    )
    if mails:
        findings.append(check_smtp(settings))
    if settings.webrtc.ws_url:  # the phone in the browser (docs/webrtc.md)
        from asterisk_cube import webrtc

        findings += webrtc.check(settings, sessions)
    return findings
