"""Shared by the provisioning modules: the one error, the validators and the lookups."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.core.numbers import DEFAULT_REGION, InvalidNumber, normalize, parse_pattern
from asterisk_cube.core.weekly import WeeklySpecError, parse_weekly
from asterisk_cube.db import models as m

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
