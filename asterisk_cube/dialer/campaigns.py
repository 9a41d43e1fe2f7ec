"""Outbound campaigns as the dialer sees them: rules and settings read from the database.

:class:`CampaignConfig` is a frozen snapshot of one ``campaigns`` row with its calling
windows turned into :class:`~asterisk_cube.core.contacts.CampaignRules` (the pure core's
input). The dialer reloads running campaigns every few seconds, so a change made from the
CLI (start, pause, stop, new windows, another cap) takes effect without a restart.

A campaign with no calling windows may dial at any time (the admin set no limit); windows
are in the campaign's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from asterisk_cube.core.contacts import CampaignRules
from asterisk_cube.db import models as m


@dataclass(frozen=True)
class CampaignConfig:
    campaign_id: int
    name: str
    mode: str  # preview | power | predictive
    status: str  # running | paused | stopped
    skill: str | None
    caller_id: str | None
    rules: CampaignRules
    abandon_cap: float
    max_dial_ratio: float
    wrap_up_seconds: int
    amd: bool
    timezone: str
    forced_registration: bool = False

    @property
    def running(self) -> bool:
        return self.status == m.CampaignStatus.RUNNING.value

    @property
    def dials_first(self) -> bool:
        """Power and predictive dial the contact first; preview rings the agent first."""
        return self.mode in (m.DialMode.POWER.value, m.DialMode.PREDICTIVE.value)


def rules_of(campaign: m.Campaign) -> CampaignRules:
    """The core's dialing rules of a campaign row (windows, attempts, retry, reservation)."""
    max_attempts = campaign.max_attempts
    retry_interval = timedelta(minutes=campaign.retry_interval_minutes)
    reservation = timedelta(minutes=campaign.callback_reservation_minutes)
    if not campaign.windows:
        return CampaignRules(
            max_attempts=max_attempts, retry_interval=retry_interval, reservation=reservation
        )
    windows = [(w.weekday, w.starts, w.ends) for w in campaign.windows]
    return CampaignRules.build(
        campaign.timezone,
        windows,
        max_attempts=max_attempts,
        retry_interval=retry_interval,
        reservation=reservation,
    )


def config_of(campaign: m.Campaign) -> CampaignConfig:
    return CampaignConfig(
        campaign_id=campaign.id,
        name=campaign.name,
        mode=campaign.mode.value if campaign.mode else m.DialMode.PREVIEW.value,
        status=campaign.status.value,
        skill=campaign.skill.name if campaign.skill else None,
        caller_id=campaign.caller_id,
        rules=rules_of(campaign),
        abandon_cap=campaign.abandon_cap,
        max_dial_ratio=campaign.max_dial_ratio,
        wrap_up_seconds=campaign.wrap_up_seconds,
        amd=campaign.amd_enabled,
        timezone=campaign.timezone,
        forced_registration=campaign.forced_registration,
    )


def load_campaign(s: Session, campaign_id: int) -> CampaignConfig | None:
    campaign = s.get(m.Campaign, campaign_id)
    return config_of(campaign) if campaign is not None else None


def outbound_campaigns(s: Session, *, running_only: bool = True) -> list[CampaignConfig]:
    """Outbound campaigns with a dial mode, lowest id first (that order shares agents out:
    an agent holding the skills of several running campaigns dials for the first)."""
    query = (
        select(m.Campaign)
        .options(selectinload(m.Campaign.windows), selectinload(m.Campaign.skill))
        .where(m.Campaign.direction == m.Direction.OUTBOUND, m.Campaign.mode.is_not(None))
        .order_by(m.Campaign.id)
    )
    if running_only:
        query = query.where(m.Campaign.status == m.CampaignStatus.RUNNING)
    return [config_of(c) for c in s.scalars(query)]
