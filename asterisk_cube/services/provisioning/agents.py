"""Agents: add, update, line grants, remove, list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.passwords import hash_password

from .common import (
    _ENDPOINT,
    _USERNAME,
    AGENT_LANGUAGES,
    ProvisioningError,
    _enum_value,
    check_did,
    get_agent,
    get_line,
    get_or_create_skill,
)


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
