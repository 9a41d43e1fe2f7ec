"""Campaigns (inbound and outbound) and their calling windows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.core.weekly import format_weekly
from asterisk_cube.db import models as m

from .common import (
    _DID,
    ProvisioningError,
    _enum_value,
    audit,
    check_positive,
    check_timezone,
    get_campaign,
    get_or_create_skill,
    parse_ratio,
    parse_weekly_spec,
)


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
