"""``asterisk-cube callbacks``: the scheduled-calls view and scheduling from the CLI (F-E6)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.core.numbers import InvalidNumber, check_typed, normalize
from asterisk_cube.dialer import callbacks as cb
from asterisk_cube.services.contacts import campaign_zones, contact_with_phone
from asterisk_cube.services.provisioning import get_agent, get_campaign

COLUMNS = ["id", "due", "state", "campaign", "phone", "name", "for", "comment"]


def _local(value: dt.datetime | None, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if value else ""


@click.group()
def callbacks() -> None:
    """Scheduled callbacks (the scheduled-calls view)."""


@db_command(callbacks, "list")
@click.option("--agent", "username", help="Only this agent's callbacks and those for all.")
@click.option("--campaign", help="Only this campaign.")
@click.option("--all", "include_done", is_flag=True, help="Also delivered and cancelled ones.")
@FORMAT_OPTION
def list_(s, username, campaign, include_done, fmt):
    """Callbacks, soonest first, times in each campaign's zone."""
    agent_id = get_agent(s, username).id if username else None
    camp = get_campaign(s, campaign) if campaign else None
    zones = campaign_zones(s)
    rows = cb.scheduled_calls(
        s,
        agent_id=agent_id,
        campaign_id=camp.id if camp else None,
        include_done=include_done,
    )
    for row in rows:
        row["due"] = _local(row["due_at"], zones[row["campaign"]])
    emit(rows, fmt, COLUMNS if fmt == "table" else None)


@db_command(callbacks, "add")
@click.argument("campaign")
@click.argument("phone")
@click.option("--at", "at", required=True, help="When, e.g. '2026-11-24 15:00' (campaign zone).")
@click.option("--agent", "username", help="Reserved for this agent (default: all agents).")
@click.option("--comment", default="", help="Shown to the agent when the call is delivered.")
def add(s, campaign, phone, at, username, comment):
    """Schedule a callback of a campaign's contact."""
    camp = get_campaign(s, campaign)
    try:
        number = normalize(check_typed(phone, "phone"), camp.phone_region)
    except InvalidNumber as exc:
        raise click.ClickException(str(exc)) from None
    if not number:
        raise click.ClickException(f"not a phone number: {phone!r}")
    contact = contact_with_phone(s, camp.id, number)
    if contact is None:
        raise click.ClickException(f"no contact {number} in campaign {camp.name}")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        raise click.ClickException(f"--at: not a date and time: {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(camp.timezone))
    agent_id = get_agent(s, username).id if username else None
    try:
        row = cb.schedule(s, contact.id, when, agent_id=agent_id, comment=comment)
    except cb.CallbackError as exc:
        raise click.ClickException(str(exc)) from None
    who = username or "all agents"
    return f"callback {row.id}: {number} at {_local(when, camp.timezone)} for {who}"


@db_command(callbacks, "cancel")
@click.argument("callback_id", type=int)
def cancel(s, callback_id):
    """Cancel a pending callback (the contact is dialed again as a retry)."""
    try:
        cb.cancel(s, callback_id)
    except cb.CallbackError as exc:
        raise click.ClickException(str(exc)) from None
    return f"callback {callback_id} cancelled"
