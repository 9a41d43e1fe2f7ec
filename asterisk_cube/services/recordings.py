"""Call recording (F-M4, issue #17): policies, the recordings' rows, retention.

A policy belongs to one line or one campaign: ``mode`` off | all | on_demand, ``consent``
none | beep | announcement (with the media to play, e.g. ``sound:asterisk-cube/recorded``),
``retention_days``. Every setter validates all its input before it writes anything and
writes an ``audit_log`` row in the caller's transaction.

The rows of the recordings themselves are written by the recorder
(``asterisk_cube.audio.recorder``) from ``serve``: started, finished (with Asterisk's
duration), failed (with the reason). :func:`expired` lists what the retention job deletes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, Integer, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import ProvisioningError

MODES = ("off", "all", "on_demand")
CONSENTS = ("none", "beep", "announcement")
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 3650
# ARI media URIs we accept for an announcement: sound:, recording:, tone:, no blanks
_MEDIA = re.compile(r"^(sound|recording|tone):[A-Za-z0-9_./:,;=-]{1,180}$")


class RecordingError(ProvisioningError):
    """Refused input; the message is one line naming the problem."""


@dataclass(frozen=True)
class Policy:
    """What the recorder needs to know for one call (plain values, read off the loop)."""

    mode: str = "off"
    consent: str = "none"
    announcement: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    line_id: int | None = None
    campaign_id: int | None = None


def check_policy(
    mode: str | None, consent: str | None, announcement: str | None, retention_days: int | None
) -> None:
    if mode is not None and mode not in MODES:
        raise RecordingError(f"recording mode {mode!r} must be one of {', '.join(MODES)}")
    if consent is not None and consent not in CONSENTS:
        raise RecordingError(f"consent {consent!r} must be one of {', '.join(CONSENTS)}")
    if announcement is not None and announcement != "" and not _MEDIA.match(announcement):
        raise RecordingError(
            f"announcement {announcement!r} must be an Asterisk media URI such as "
            "sound:asterisk-cube/recorded"
        )
    if retention_days is not None and (
        isinstance(retention_days, bool)
        or not isinstance(retention_days, int)
        or not 1 <= retention_days <= MAX_RETENTION_DAYS
    ):
        raise RecordingError(f"retention must be 1..{MAX_RETENTION_DAYS} days")


def set_policy(
    s: Session,
    *,
    line: str | None = None,
    campaign: str | None = None,
    mode: str | None = None,
    consent: str | None = None,
    announcement: str | None = None,
    retention_days: int | None = None,
    actor: str = "cli",
    actor_id: int | None = None,
) -> m.RecordingPolicy:
    """Create or change the policy of a line (by DID) or a campaign (by name)."""
    if (line is None) == (campaign is None):
        raise RecordingError("give exactly one of a line (DID) or a campaign")
    check_policy(mode, consent, announcement, retention_days)
    if line is not None:
        line_row = s.scalar(select(m.Line).where(m.Line.did == line.strip()))
        if line_row is None:
            raise RecordingError(f"no line {line!r}")
        policy = s.scalar(select(m.RecordingPolicy).where(m.RecordingPolicy.line_id == line_row.id))
        target = f"line {line_row.did}"
        if policy is None:
            policy = m.RecordingPolicy(line_id=line_row.id)
    else:
        row = s.scalar(select(m.Campaign).where(m.Campaign.name == (campaign or "").strip()))
        if row is None:
            raise RecordingError(f"no campaign {campaign!r}")
        policy = s.scalar(select(m.RecordingPolicy).where(m.RecordingPolicy.campaign_id == row.id))
        target = f"campaign {row.name}"
        if policy is None:
            policy = m.RecordingPolicy(campaign_id=row.id)
    old = describe(policy)
    after_consent = consent if consent is not None else (policy.consent or "none")
    after_media = announcement if announcement is not None else policy.announcement
    if after_consent == "announcement" and not after_media:
        raise RecordingError("consent 'announcement' needs --announcement MEDIA")
    if mode is not None:
        policy.mode = mode
    if consent is not None:
        policy.consent = consent
    if announcement is not None:
        policy.announcement = announcement or None
    if retention_days is not None:
        policy.retention_days = retention_days
    policy.mode = policy.mode or "off"
    policy.consent = policy.consent or "none"
    policy.retention_days = policy.retention_days or DEFAULT_RETENTION_DAYS
    s.add(policy)
    s.flush()
    if retention_days is not None:
        _reexpire(s, policy)
    from asterisk_cube.services.supervision import audit

    audit(s, actor, actor_id, "recording_policy", target, old=old, new=describe(policy))
    return policy


def _reexpire(s: Session, policy: m.RecordingPolicy) -> None:
    """A changed retention applies to the recordings already made under the policy too
    (a shorter one required by law must not wait for old files to age out)."""
    column = m.Recording.line_id if policy.line_id is not None else m.Recording.campaign_id
    scope = policy.line_id if policy.line_id is not None else policy.campaign_id
    rows = select(m.Recording).where(column == scope, m.Recording.state != "deleted")
    if policy.line_id is None:  # a campaign's policy: not the calls of a line with its own
        own = select(m.RecordingPolicy.line_id).where(m.RecordingPolicy.line_id.is_not(None))
        rows = rows.where(or_(m.Recording.line_id.is_(None), m.Recording.line_id.not_in(own)))
    for row in s.scalars(rows):
        row.expires_at = row.started_at + dt.timedelta(days=policy.retention_days)


def describe(policy: m.RecordingPolicy) -> dict:
    return {
        "mode": policy.mode or "off",
        "consent": policy.consent or "none",
        "announcement": policy.announcement,
        "retention_days": policy.retention_days or DEFAULT_RETENTION_DAYS,
    }


def list_policies(s: Session) -> list[dict]:
    rows = []
    for policy in s.scalars(select(m.RecordingPolicy).order_by(m.RecordingPolicy.id)):
        if policy.line_id is not None:
            line = s.get(m.Line, policy.line_id)
            scope, name = "line", line.did if line else "?"
        else:
            campaign = s.get(m.Campaign, policy.campaign_id)
            scope, name = "campaign", campaign.name if campaign else "?"
        rows.append({"scope": scope, "name": name, **describe(policy)})
    return rows


def _policy_statement() -> Select:
    """One read for :func:`policy_for`: the call's campaign (given, else its line's) and the
    line's own policy before the campaign's (none: NULL policy columns)."""
    rp = m.RecordingPolicy
    line = bindparam("line", type_=Integer)
    campaign = bindparam("campaign", type_=Integer)
    line_campaign = select(m.Line.campaign_id).where(m.Line.id == line).scalar_subquery()
    scope = select(func.coalesce(campaign, line_campaign).label("cid")).subquery("scope")
    return (
        select(scope.c.cid, rp.mode, rp.consent, rp.announcement, rp.retention_days, rp.id)
        .select_from(scope.outerjoin(rp, or_(rp.line_id == line, rp.campaign_id == scope.c.cid)))
        .order_by(rp.line_id.is_(None))
        .limit(1)
    )


POLICY_STATEMENT = _policy_statement()


def policy_for(s: Session | Connection, line_id: int | None, campaign_id: int | None) -> Policy:
    """The policy for a call on ``line_id`` / of ``campaign_id``: the line's if it has one,
    else the campaign's (a hotline's campaign), else off. A line without its own policy
    takes its campaign's.

    One Core statement (issue #19: it is read for every bridged call; three ORM reads
    were ~5 % of serve's CPU under load): the recorder runs it on a plain connection."""
    row = s.execute(POLICY_STATEMENT, {"line": line_id, "campaign": campaign_id}).one()
    cid = row.cid if line_id is not None and campaign_id is None else campaign_id
    if row.id is None:
        return Policy(line_id=line_id, campaign_id=cid)
    return Policy(
        row.mode or "off",
        row.consent or "none",
        row.announcement,
        row.retention_days or DEFAULT_RETENTION_DAYS,
        line_id,
        cid,
    )


# ------------------------------------------------------------------ the recordings' rows


def started(
    s: Session,
    *,
    call_id: int,
    name: str,
    target: str,
    trigger: str,
    started_by: str,
    policy: Policy,
    now: dt.datetime,
    fmt: str = "wav",
) -> m.Recording:
    row = m.Recording(
        call_id=call_id,
        name=name,
        format=fmt,
        target=target,
        trigger=trigger,
        started_by=started_by,
        line_id=policy.line_id,
        campaign_id=policy.campaign_id,
        state="recording",
        started_at=now,
        expires_at=now + dt.timedelta(days=policy.retention_days),
    )
    s.add(row)
    s.flush()
    return row


def finished(
    s: Session, name: str, *, now: dt.datetime, duration: float | None, error: str | None = None
) -> m.Recording | None:
    row = s.scalar(select(m.Recording).where(m.Recording.name == name))
    if row is None or row.state not in ("recording",):
        return row
    row.ended_at = now
    if error is None:
        row.state = "done"
        row.duration_seconds = duration
    else:
        row.state = "failed"
        row.error = error[:200]
    return row


def open_recordings(s: Session) -> list[tuple[str, str]]:
    """(name, target) of the recordings still marked ``recording``."""
    rows = s.execute(
        select(m.Recording.name, m.Recording.target).where(m.Recording.state == "recording")
    )
    return [(name, target) for name, target in rows]


def expired(s: Session, now: dt.datetime, limit: int = 200) -> list[m.Recording]:
    """Recordings past their retention that still have a file (done or failed rows)."""
    return list(
        s.scalars(
            select(m.Recording)
            .where(m.Recording.state.in_(("done", "failed")), m.Recording.expires_at <= now)
            .order_by(m.Recording.expires_at)
            .limit(limit)
        )
    )


def mark_deleted(s: Session, recording_id: int, now: dt.datetime) -> None:
    row = s.get(m.Recording, recording_id)
    if row is not None:
        row.state = "deleted"
        row.deleted_at = now


def of_call(s: Session, call_id: int) -> list[m.Recording]:
    return list(
        s.scalars(
            select(m.Recording).where(m.Recording.call_id == call_id).order_by(m.Recording.id)
        )
    )


def set_retention_everywhere(s: Session, days: int, *, actor: str = "cli") -> int:
    """Set ``retention_days`` on every policy (CLI ``recording retention DAYS``)."""
    check_policy(None, None, None, days)
    count = 0
    for policy in s.scalars(select(m.RecordingPolicy)):
        policy.retention_days = days
        _reexpire(s, policy)
        count += 1
    from asterisk_cube.services.supervision import audit

    audit(s, actor, None, "recording_retention", "all", days=days, policies=count)
    return count


__all__ = [
    "CONSENTS",
    "MODES",
    "Policy",
    "RecordingError",
    "expired",
    "finished",
    "list_policies",
    "mark_deleted",
    "of_call",
    "policy_for",
    "set_policy",
    "started",
]
