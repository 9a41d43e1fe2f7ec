"""Provisioning: lines, agents, skills, campaigns, clients and enquiry categories.

Every function validates all of its input before touching the session, and
raises ``ProvisioningError`` naming the problem. Callers own the transaction
(``db.session.transaction``), so a failure leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.core.numbers import DEFAULT_REGION, InvalidNumber, normalize, parse_pattern
from asterisk_cube.core.weekly import WeeklySpecError, format_weekly, parse_weekly
from asterisk_cube.db import models as m
from asterisk_cube.passwords import hash_password

_DID = re.compile(r"^\+?[0-9]{2,20}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9]+/[A-Za-z0-9._@-]+$")
AGENT_LANGUAGES = ("en", "nb")  # the desk's languages (web/i18n.LANGUAGES)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class ProvisioningError(ValueError):
    """Bad provisioning input; the message names the problem."""


# ----------------------------------------------------------------- validators


def check_did(did: str) -> str:
    did = did.strip()
    if not _DID.match(did):
        raise ProvisioningError(f"DID {did!r} must be 2-20 digits, optionally starting with +")
    return did


def check_own_number(raw: str, region: str = DEFAULT_REGION) -> str:
    """A client's own number, or a number series with a trailing ``*`` (``+4723450*``), in
    normalised form (``+4723450*``) so that every later compare is on one form."""
    text = (raw or "").strip()
    try:
        pattern = parse_pattern(text, region)
    except InvalidNumber:
        pattern = None
    digits = len(pattern.value) - 1 if pattern else 0
    low, high = (4, 14) if pattern and pattern.prefix else (5, 15)
    if pattern is None or not low <= digits <= high:
        raise ProvisioningError(
            f"own number {text!r} is not a phone number or number series (digits, optional "
            "leading +; a trailing * covers a series, e.g. +4723450*)"
        )
    return pattern.value + ("*" if pattern.prefix else "")


def did_key(did: str, region: str | None = None) -> str:
    """The form two DIDs are compared in: ``4721000001`` and ``+4721000001`` are one line.
    National DIDs are read in ``region`` (the owner's; default NO)."""
    try:
        return normalize(did, region or DEFAULT_REGION) or did
    except InvalidNumber:
        return did


def _line_region(line: m.Line) -> str | None:
    owner = line.client or line.campaign
    return owner.phone_region if owner is not None else None


def _same_line(s: Session, did: str, region: str | None = None) -> m.Line | None:
    """The stored line that is ``did`` once both are normalised, if any."""
    exact = s.scalar(select(m.Line).where(m.Line.did == did))
    if exact is not None:
        return exact
    key = did_key(did, region)
    return next(
        (ln for ln in s.scalars(select(m.Line)) if did_key(ln.did, _line_region(ln)) == key),
        None,
    )


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProvisioningError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Oslo)"
        ) from None
    return name


def check_positive(value: int, what: str, minimum: int = 1) -> int:
    if value < minimum:
        raise ProvisioningError(f"{what} must be at least {minimum}, got {value}")
    return value


def parse_ratio(text: str | float, what: str) -> float:
    """Accept ``3%`` or ``0.03``."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ProvisioningError(f"{what} must be a number like 0.03 or 3%, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise ProvisioningError(f"{what} must be between 0 and 100%, got {raw!r}")
    return value


def parse_weekly_spec(spec: str, what: str):
    try:
        return parse_weekly(spec)
    except WeeklySpecError as exc:
        raise ProvisioningError(f"{what}: {exc}") from None


def _enum_value(cls, value: str, what: str):
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(v.value for v in cls)
        raise ProvisioningError(f"{what} must be one of {choices}; got {value!r}") from None


# ----------------------------------------------------------------- lookups


def _one(s: Session, column, value: str, missing: str):
    row = s.scalar(select(column.class_).where(column == value))
    if row is None:
        raise ProvisioningError(missing)
    return row


def get_line(s: Session, did: str) -> m.Line:
    """The line with this DID, written as stored or in another form of the same number."""
    line = _same_line(s, did.strip())
    if line is None:
        raise ProvisioningError(f"no line with DID {did!r}")
    return line


def get_agent(s: Session, username: str) -> m.Agent:
    return _one(s, m.Agent.username, username, f"no agent named {username!r}")


def get_campaign(s: Session, name: str) -> m.Campaign:
    return _one(s, m.Campaign.name, name, f"no campaign named {name!r}")


def get_client(s: Session, name: str) -> m.Client:
    return _one(s, m.Client.name, name, f"no client named {name!r}")


def get_or_create_skill(s: Session, name: str) -> m.Skill:
    name = name.strip()
    if not name:
        raise ProvisioningError("skill name is empty")
    skill = s.scalar(select(m.Skill).where(m.Skill.name == name))
    if skill is None:
        skill = m.Skill(name=name)
        s.add(skill)
        s.flush()
    return skill


def audit(s: Session, actor: str, action: str, target: str, **details: Any) -> None:
    s.add(m.AuditLog(actor=actor, action=action, target=target, details=details))


# ------------------------------------------------------------------- lines


def add_line(
    s: Session,
    did: str,
    name: str | None = None,
    priority: int = 0,
    campaign: str | None = None,
    client: str | None = None,
    offer_timeout: int = 20,
    announcement: str | None = None,
) -> m.Line:
    did = check_did(did)
    if campaign and client:
        raise ProvisioningError("a line belongs to a campaign or to a client, not both")
    check_positive(offer_timeout, "offer timeout", 5)
    owner_campaign = get_campaign(s, campaign) if campaign else None
    if owner_campaign and owner_campaign.direction != m.Direction.INBOUND:
        raise ProvisioningError(
            f"campaign {campaign!r} is outbound; a hotline needs an inbound campaign"
        )
    owner_client = get_client(s, client) if client else None
    owner = owner_client or owner_campaign
    existing = _same_line(s, did, owner.phone_region if owner else None)
    if existing is not None:
        same = "" if existing.did == did else f" as {existing.did} (the same number)"
        raise ProvisioningError(f"line {did} already exists{same}")
    line = m.Line(
        did=did,
        name=name or did,
        priority=priority,
        campaign=owner_campaign,
        client=owner_client,
        offer_timeout_seconds=offer_timeout,
        announcement=announcement,
    )
    s.add(line)
    s.flush()
    return line


def update_line(s: Session, did: str, **changes: Any) -> m.Line:
    line = get_line(s, did)
    if changes.get("offer_timeout") is not None:
        line.offer_timeout_seconds = check_positive(changes["offer_timeout"], "offer timeout", 5)
    if changes.get("priority") is not None:
        line.priority = int(changes["priority"])
    if changes.get("name"):
        line.name = changes["name"]
    if changes.get("enabled") is not None:
        line.enabled = bool(changes["enabled"])
    if changes.get("announcement") is not None:
        line.announcement = changes["announcement"] or None
    s.flush()
    return line


def remove_line(s: Session, did: str) -> None:
    s.delete(get_line(s, did))
    s.flush()


def line_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for line in s.scalars(select(m.Line).order_by(m.Line.priority.desc(), m.Line.did)):
        if line.client:
            kind, owner = "answering", line.client.name
        elif line.campaign:
            kind, owner = "hotline", line.campaign.name
        else:
            kind, owner = "service", ""
        agents = s.scalar(select(func.count()).where(m.AgentLine.line_id == line.id))
        rows.append(
            {
                "did": line.did,
                "name": line.name,
                "priority": line.priority,
                "kind": kind,
                "owner": owner,
                "agents": agents,
                "offer_timeout": line.offer_timeout_seconds,
                "enabled": line.enabled,
            }
        )
    return rows


# ------------------------------------------------------------------- agents


def _resolve_lines(s: Session, dids: Iterable[str]) -> list[m.Line]:
    return [get_line(s, check_did(d)) for d in dids]


def add_agent(
    s: Session,
    username: str,
    name: str | None = None,
    endpoint: str | None = None,
    role: str = "agent",
    password: str | None = None,
    skills: Iterable[str] = (),
    lines: Iterable[str] = (),
    language: str | None = None,
) -> m.Agent:
    """``language``: the desk language ("en", "nb"); None follows the agent's browser."""
    username = username.strip().lower()
    if language is not None and language not in AGENT_LANGUAGES:
        raise ProvisioningError(
            f"language {language!r} is not one of {', '.join(AGENT_LANGUAGES)} "
            "(leave it out to follow the browser)"
        )
    if not _USERNAME.match(username):
        raise ProvisioningError(
            f"username {username!r} must be 2-64 of a-z 0-9 . _ - starting with a letter or digit"
        )
    role_value = _enum_value(m.Role, role, "role")
    if endpoint and not _ENDPOINT.match(endpoint):
        raise ProvisioningError(f"endpoint {endpoint!r} must look like PJSIP/agent01")
    try:
        pw_hash = hash_password(password) if password else None
    except ValueError as exc:
        raise ProvisioningError(str(exc)) from None
    if s.scalar(select(m.Agent).where(m.Agent.username == username)):
        raise ProvisioningError(f"agent {username} already exists")
    permitted = _resolve_lines(s, lines)
    agent = m.Agent(
        username=username,
        name=name or username,
        endpoint=endpoint,
        role=role_value,
        password_hash=pw_hash,
        language=language,
    )
    agent.skills = [get_or_create_skill(s, k) for k in skills]
    s.add(agent)
    s.flush()
    for line in permitted:
        s.add(m.AgentLine(agent_id=agent.id, line_id=line.id))
    s.add(m.AgentStatus(agent_id=agent.id))
    s.flush()
    return agent


def update_agent(
    s: Session,
    username: str,
    name: str | None = None,
    endpoint: str | None = None,
    role: str | None = None,
    password: str | None = None,
    active: bool | None = None,
    add_skills: Iterable[str] = (),
    remove_skills: Iterable[str] = (),
) -> m.Agent:
    agent = get_agent(s, username)
    if endpoint is not None and endpoint and not _ENDPOINT.match(endpoint):
        raise ProvisioningError(f"endpoint {endpoint!r} must look like PJSIP/agent01")
    role_value = _enum_value(m.Role, role, "role") if role else None
    try:
        pw_hash = hash_password(password) if password else None
    except ValueError as exc:
        raise ProvisioningError(str(exc)) from None
    unknown = [k for k in remove_skills if k not in {sk.name for sk in agent.skills}]
    if unknown:
        raise ProvisioningError(f"agent {username} does not hold skill {unknown[0]!r}")
    # a new password, a role change or (de)activation ends the agent's web sessions
    revoke = bool(pw_hash) or (role_value is not None and role_value != agent.role)
    revoke = revoke or (active is not None and active != agent.active)
    if name:
        agent.name = name
    if endpoint is not None:
        agent.endpoint = endpoint or None
    if role_value:
        agent.role = role_value
    if pw_hash:
        agent.password_hash = pw_hash
    if active is not None:
        agent.active = active
    if revoke:
        agent.session_version = (agent.session_version or 0) + 1
    for k in add_skills:
        skill = get_or_create_skill(s, k)
        if skill not in agent.skills:
            agent.skills.append(skill)
    agent.skills = [sk for sk in agent.skills if sk.name not in set(remove_skills)]
    s.flush()
    return agent


def grant_lines(s: Session, username: str, dids: Iterable[str]) -> None:
    agent = get_agent(s, username)
    have = {link.line_id for link in agent.line_links}
    for line in _resolve_lines(s, dids):
        if line.id not in have:
            s.add(m.AgentLine(agent_id=agent.id, line_id=line.id))
            have.add(line.id)
    s.flush()


def revoke_lines(s: Session, username: str, dids: Iterable[str]) -> None:
    agent = get_agent(s, username)
    lines = _resolve_lines(s, dids)
    by_line = {link.line_id: link for link in agent.line_links}
    for line in lines:
        if line.id not in by_line:
            raise ProvisioningError(f"agent {username} has no access to line {line.did}")
    for line in lines:
        s.delete(by_line[line.id])
    s.flush()


def remove_agent(s: Session, username: str) -> None:
    s.delete(get_agent(s, username))
    s.flush()


def agent_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for agent in s.scalars(select(m.Agent).order_by(m.Agent.username)):
        dids = s.scalars(
            select(m.Line.did)
            .join(m.AgentLine)
            .where(m.AgentLine.agent_id == agent.id)
            .order_by(m.Line.did)
        ).all()
        rows.append(
            {
                "username": agent.username,
                "name": agent.name,
                "role": agent.role.value,
                "endpoint": agent.endpoint or "",
                "skills": ",".join(sk.name for sk in agent.skills),
                "lines": ",".join(dids),
                "state": agent.status.state.value if agent.status else "logged_out",
                "active": agent.active,
            }
        )
    return rows


# ---------------------------------------------------------------- campaigns


def _validate_campaign_fields(
    direction: m.Direction, mode: m.DialMode | None, caller_id: str | None
) -> None:
    if direction == m.Direction.OUTBOUND and mode is None:
        raise ProvisioningError("an outbound campaign needs --mode preview, power or predictive")
    if direction == m.Direction.INBOUND and mode is not None:
        raise ProvisioningError("an inbound campaign has no dial mode")
    if caller_id and not _DID.match(caller_id):
        raise ProvisioningError(
            f"caller ID {caller_id!r} must be 2-20 digits, optionally starting with +"
        )


def add_campaign(
    s: Session,
    name: str,
    direction: str = "outbound",
    mode: str | None = None,
    skill: str | None = None,
    caller_id: str | None = None,
    max_attempts: int = 3,
    retry_interval: int = 60,
    windows: str | None = None,
    timezone: str = "Europe/Oslo",
    region: str = "NO",
    abandon_cap: str | float = 0.03,
    wrap_up: int = 15,
    callback_reservation: int = 15,
    forced_registration: bool = False,
    amd: bool = False,
) -> m.Campaign:
    name = name.strip()
    if not name:
        raise ProvisioningError("campaign name is empty")
    direction_v = _enum_value(m.Direction, direction, "direction")
    mode_v = _enum_value(m.DialMode, mode, "mode") if mode else None
    _validate_campaign_fields(direction_v, mode_v, caller_id)
    check_positive(max_attempts, "max attempts")
    check_positive(retry_interval, "retry interval (minutes)")
    check_positive(wrap_up, "wrap-up seconds", 0)
    check_positive(callback_reservation, "callback reservation (minutes)", 0)
    cap = parse_ratio(abandon_cap, "abandon cap")
    check_timezone(timezone)
    intervals = parse_weekly_spec(windows, "calling windows") if windows else []
    if s.scalar(select(m.Campaign).where(m.Campaign.name == name)):
        raise ProvisioningError(f"campaign {name!r} already exists")
    campaign = m.Campaign(
        name=name,
        direction=direction_v,
        mode=mode_v,
        skill=get_or_create_skill(s, skill) if skill else None,
        caller_id=caller_id,
        max_attempts=max_attempts,
        retry_interval_minutes=retry_interval,
        timezone=timezone,
        phone_region=region.upper(),
        abandon_cap=cap,
        wrap_up_seconds=wrap_up,
        callback_reservation_minutes=callback_reservation,
        forced_registration=forced_registration,
        amd_enabled=amd,
    )
    campaign.windows = [
        m.CallingWindow(weekday=iv.weekday, starts=iv.starts, ends=iv.ends) for iv in intervals
    ]
    s.add(campaign)
    s.flush()
    return campaign


def update_campaign(s: Session, name: str, **changes: Any) -> m.Campaign:
    campaign = get_campaign(s, name)
    # Validate everything first.
    values: dict[str, Any] = {}
    if changes.get("mode"):
        values["mode"] = _enum_value(m.DialMode, changes["mode"], "mode")
        _validate_campaign_fields(campaign.direction, values["mode"], None)
    if changes.get("caller_id"):
        _validate_campaign_fields(campaign.direction, campaign.mode, changes["caller_id"])
        values["caller_id"] = changes["caller_id"]
    for key, attr, minimum in (
        ("max_attempts", "max_attempts", 1),
        ("retry_interval", "retry_interval_minutes", 1),
        ("wrap_up", "wrap_up_seconds", 0),
        ("callback_reservation", "callback_reservation_minutes", 0),
    ):
        if changes.get(key) is not None:
            values[attr] = check_positive(changes[key], key.replace("_", " "), minimum)
    if changes.get("abandon_cap") is not None:
        values["abandon_cap"] = parse_ratio(changes["abandon_cap"], "abandon cap")
    if changes.get("timezone"):
        values["timezone"] = check_timezone(changes["timezone"])
    for flag, attr in (("forced_registration", "forced_registration"), ("amd", "amd_enabled")):
        if changes.get(flag) is not None:
            values[attr] = bool(changes[flag])
    intervals = None
    if changes.get("windows"):
        intervals = parse_weekly_spec(changes["windows"], "calling windows")
    skill = get_or_create_skill(s, changes["skill"]) if changes.get("skill") else None
    # Then apply.
    for attr, value in values.items():
        setattr(campaign, attr, value)
    if skill:
        campaign.skill = skill
    if intervals is not None:
        campaign.windows = [
            m.CallingWindow(weekday=iv.weekday, starts=iv.starts, ends=iv.ends) for iv in intervals
        ]
    s.flush()
    return campaign


def set_campaign_status(s: Session, name: str, status: str, actor: str = "cli") -> m.Campaign:
    campaign = get_campaign(s, name)
    new = _enum_value(m.CampaignStatus, status, "status")
    if campaign.direction == m.Direction.INBOUND and new != m.CampaignStatus.STOPPED:
        # Inbound campaigns follow their lines; "running" is still allowed as a label.
        pass
    old = campaign.status
    campaign.status = new
    audit(s, actor, "campaign_status", campaign.name, old=old.value, new=new.value)
    s.flush()
    return campaign


def campaign_windows_text(campaign: m.Campaign) -> str:
    from asterisk_cube.core.weekly import WeeklyInterval

    return format_weekly([WeeklyInterval(w.weekday, w.starts, w.ends) for w in campaign.windows])


def campaign_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for c in s.scalars(select(m.Campaign).order_by(m.Campaign.name)):
        counts = dict(
            s.execute(
                select(m.Contact.status, func.count())
                .where(m.Contact.campaign_id == c.id)
                .group_by(m.Contact.status)
            ).all()
        )
        rows.append(
            {
                "name": c.name,
                "direction": c.direction.value,
                "mode": c.mode.value if c.mode else "",
                "status": c.status.value,
                "skill": c.skill.name if c.skill else "",
                "caller_id": c.caller_id or "",
                "max_attempts": c.max_attempts,
                "retry_min": c.retry_interval_minutes,
                "windows": campaign_windows_text(c),
                "abandon_cap": f"{c.abandon_cap:.1%}",
                "contacts": sum(counts.values()),
                "open": sum(
                    n
                    for st, n in counts.items()
                    if st
                    in (m.ContactStatus.NEW, m.ContactStatus.NOT_ANSWERED, m.ContactStatus.CALLBACK)
                ),
            }
        )
    return rows


# ------------------------------------------------------------------ clients


def add_client(
    s: Session,
    name: str,
    greeting: str = "",
    greeting_informal: str = "",
    instruction: str = "",
    tone: str = "formal",
    timezone: str = "Europe/Oslo",
    region: str = "NO",
    holiday_country: str | None = None,
    handling: str = "note",
    forward1: str | None = None,
    forward2: str | None = None,
    closed_handling: str = "note",
    hours: str | None = None,
    adblock: bool = False,
    own_numbers: Iterable[str] = (),
    recipients: Iterable[str] = (),
    customer_number: str | None = None,
    forward_timeout: int = 20,
) -> m.Client:
    name = name.strip()
    if not name:
        raise ProvisioningError("client name is empty")
    tone_v = _enum_value(m.Tone, tone, "tone")
    handling_v = _enum_value(m.Handling, handling, "handling")
    closed_v = _enum_value(m.ClosedHandling, closed_handling, "closed handling")
    if handling_v == m.Handling.FORWARD and not forward1:
        raise ProvisioningError("forward handling needs a first forward target")
    check_timezone(timezone)
    intervals = parse_weekly_spec(hours, "opening hours") if hours else []
    if holiday_country:
        _check_holiday_country(holiday_country)
    check_positive(forward_timeout, "forward timeout (seconds)", 3)
    own = list(dict.fromkeys(check_own_number(n, region) for n in own_numbers))
    mails = list(recipients)
    for mail in mails:
        if not _EMAIL.match(mail):
            raise ProvisioningError(f"recipient {mail!r} is not an e-mail address")
    if s.scalar(select(m.Client).where(m.Client.name == name)):
        raise ProvisioningError(f"client {name!r} already exists")
    client = m.Client(
        name=name,
        customer_number=customer_number,
        greeting=greeting,
        greeting_informal=greeting_informal,
        work_instruction=instruction,
        tone=tone_v,
        timezone=timezone,
        phone_region=region.upper(),
        holiday_country=holiday_country.upper() if holiday_country else None,
        standard_handling=handling_v,
        forward_target1=forward1,
        forward_target2=forward2,
        forward_timeout_seconds=forward_timeout,
        closed_handling=closed_v,
        adblock_enabled=adblock,
        own_numbers=own,
    )
    client.hours = [
        m.OpeningHours(weekday=iv.weekday, opens=iv.starts, closes=iv.ends) for iv in intervals
    ]
    client.recipients = [m.NoteRecipient(email=mail) for mail in dict.fromkeys(mails)]
    s.add(client)
    s.flush()
    return client


def _check_holiday_country(code: str) -> None:
    import holidays

    if code.upper() not in holidays.list_supported_countries():
        raise ProvisioningError(f"no national holidays known for country {code!r}")


def set_client_hours(s: Session, name: str, hours: str) -> m.Client:
    intervals = parse_weekly_spec(hours, "opening hours")
    client = get_client(s, name)
    client.hours = [
        m.OpeningHours(weekday=iv.weekday, opens=iv.starts, closes=iv.ends) for iv in intervals
    ]
    touch_client(client)
    s.flush()
    return client


def touch_client(client: m.Client) -> None:
    """Mark the client's configuration as changed: the FastAGI entry cache of every running
    ``serve`` compares ``max(clients.updated_at)`` (among others) to notice changes made by
    another process. Child-row changes (hours, days, lists) do not update the row by
    themselves."""
    client.updated_at = m.utcnow()


def add_special_day(
    s: Session, name: str, day: str, label: str = "", hours: str | None = None
) -> m.SpecialDay:
    """A holiday (no hours) or a day with other hours (``hours='10:00-14:00'``)."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise ProvisioningError(f"date {day!r} must be YYYY-MM-DD") from None
    opens = closes = None
    if hours:
        spec = parse_weekly_spec(f"mon {hours}", "special-day hours")[0]
        opens, closes = spec.starts, spec.ends
    client = get_client(s, name)
    if any(sd.day == date for sd in client.special_days):
        raise ProvisioningError(f"{date} is already a special day for {name}")
    special = m.SpecialDay(
        day=date,
        kind=m.SpecialDayKind.SPECIAL if hours else m.SpecialDayKind.HOLIDAY,
        name=label,
        opens=opens,
        closes=closes,
    )
    client.special_days.append(special)
    touch_client(client)
    s.flush()
    return special


def client_rows(s: Session) -> list[dict[str, Any]]:
    from asterisk_cube.core.weekly import WeeklyInterval

    rows = []
    for c in s.scalars(select(m.Client).order_by(m.Client.name)):
        rows.append(
            {
                "name": c.name,
                "tone": c.tone.value,
                "handling": c.standard_handling.value,
                "hours": format_weekly(
                    [WeeklyInterval(h.weekday, h.opens, h.closes) for h in c.hours]
                )
                if c.hours
                else "",
                "timezone": c.timezone,
                "lines": ",".join(line.did for line in c.lines),
                "adblock": c.adblock_enabled,
                "recipients": ",".join(r.email for r in c.recipients),
            }
        )
    return rows


# ---------------------------------------------------------------- enquiries


def add_category(
    s: Session, name: str, multi: bool = False, campaign: str | None = None, position: int = 0
) -> m.EnquiryCategory:
    name = name.strip()
    if not name:
        raise ProvisioningError("category name is empty")
    owner = get_campaign(s, campaign) if campaign else None
    owner_id = owner.id if owner else None
    exists = s.scalar(
        select(m.EnquiryCategory).where(
            m.EnquiryCategory.name == name,
            m.EnquiryCategory.campaign_id.is_(None)
            if owner_id is None
            else m.EnquiryCategory.campaign_id == owner_id,
        )
    )
    if exists:
        raise ProvisioningError(f"category {name!r} already exists")
    category = m.EnquiryCategory(
        name=name, multi_choice=multi, campaign_id=owner_id, position=position
    )
    s.add(category)
    s.flush()
    return category


def get_category(s: Session, name: str, campaign: str | None = None) -> m.EnquiryCategory:
    query = select(m.EnquiryCategory).where(m.EnquiryCategory.name == name)
    if campaign:
        query = query.where(m.EnquiryCategory.campaign_id == get_campaign(s, campaign).id)
    else:
        query = query.where(m.EnquiryCategory.campaign_id.is_(None))
    category = s.scalar(query)
    if category is None:
        raise ProvisioningError(f"no category named {name!r}")
    return category


def add_topics(
    s: Session,
    category: str,
    topics: Iterable[str],
    outcome: str = "none",
    campaign: str | None = None,
) -> list[m.EnquiryTopic]:
    outcome_v = _enum_value(m.TopicOutcome, outcome, "outcome")
    names = [t.strip() for t in topics]
    if not names or any(not t for t in names):
        raise ProvisioningError("topic names must not be empty")
    cat = get_category(s, category, campaign)
    existing = {t.name for t in cat.topics}
    dup = [t for t in names if t in existing] or [t for t in names if names.count(t) > 1]
    if dup:
        raise ProvisioningError(f"topic {dup[0]!r} already exists in {category!r}")
    start = len(cat.topics)
    made = [
        m.EnquiryTopic(name=t, position=start + i, outcome=outcome_v) for i, t in enumerate(names)
    ]
    cat.topics.extend(made)
    s.flush()
    return made


def enquiry_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for cat in s.scalars(
        select(m.EnquiryCategory).order_by(m.EnquiryCategory.position, m.EnquiryCategory.name)
    ):
        campaign = s.get(m.Campaign, cat.campaign_id) if cat.campaign_id else None
        rows.append(
            {
                "category": cat.name,
                "choice": "multi" if cat.multi_choice else "single",
                "campaign": campaign.name if campaign else "",
                "topics": ", ".join(
                    t.name + (f" [{t.outcome.value}]" if t.outcome != m.TopicOutcome.NONE else "")
                    for t in cat.topics
                ),
            }
        )
    return rows
