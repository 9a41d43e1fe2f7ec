"""``asterisk-cube report``: inbound, outbound, agent-state and enquiry reports (F-M2, F-E3).

Each subcommand prints one :class:`asterisk_cube.reports.Report` as a table, CSV or JSON.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import click

from asterisk_cube import reports
from asterisk_cube.cli.common import FORMAT_OPTION, emit, friendly_errors, pass_ctx
from asterisk_cube.reports.common import (
    Period,
    Report,
    ReportError,
    check_zone,
    parse_day,
    system_zone,
)


def _period(first: str | None, last: str | None, zone: str) -> Period:
    today = dt.datetime.now(ZoneInfo(check_zone(zone))).date()
    to_day = parse_day(last, "--to") if last else today
    from_day = parse_day(first, "--from") if first else to_day - dt.timedelta(days=6)
    return Period(from_day, to_day, zone)


def report_options(group_keys: tuple[str, ...], default_group: tuple[str, ...]) -> Callable:
    """--from/--to/--zone/--group-by/--format, shared by every report command."""

    def decorate(fn: Callable) -> Callable:
        options = [
            click.option(
                "--from",
                "first",
                metavar="YYYY-MM-DD",
                help="First day (default: --to minus 6 days).",
            ),
            click.option(
                "--to", "last", metavar="YYYY-MM-DD", help="Last day, included (default: today)."
            ),
            click.option(
                "--zone",
                default=system_zone,
                envvar="ASTERISK_CUBE_REPORT_ZONE",
                show_default="the machine's zone",
                help="IANA time zone of the days, weeks and months.",
            ),
            click.option(
                "--group-by",
                "group_by",
                multiple=True,
                type=click.Choice(group_keys),
                help=f"Grouping; repeat to combine, e.g. --group-by day --group-by "
                f"{default_group[-1]} (default: {' + '.join(default_group)}).",
            ),
            FORMAT_OPTION,
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def report_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None

    return friendly_errors(wrapper)


def _hms(value: Any) -> Any:
    if not isinstance(value, int | float):
        return value
    total = round(value)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def show(report: Report, fmt: str, durations: tuple[str, ...] = ()) -> None:
    if fmt == "csv":
        click.echo(report.to_csv(), nl=False)
    elif fmt == "json":
        click.echo(report.to_json())
    else:
        rows = [
            {c: (_hms(r.get(c)) if c in durations else r.get(c)) for c in report.columns}
            for r in report.rows
        ]
        emit(rows, "table", report.columns)


@click.group()
def report() -> None:
    """Reports: inbound, outbound, agent states, enquiries (table, CSV or JSON)."""


@report.command()
@report_options(("day", "week", "month", "line"), ("line",))
@click.option("--line", "lines", multiple=True, metavar="DID", help="Only this line (repeatable).")
@click.option(
    "--service-level-seconds",
    type=float,
    default=20,
    show_default=True,
    help="Answered within this many seconds of queueing counts toward the service level.",
)
@pass_ctx
@report_errors
def inbound(ctx, first, last, zone, group_by, fmt, lines, service_level_seconds):
    """Offered, answered, abandoned, service level, waits and missed calls per line/period.

    Service level = calls answered within N seconds of entering the queue / calls offered
    (abandoned calls included). Waits are in seconds.
    """
    period = _period(first, last, zone)
    with ctx.transaction() as s:
        result = reports.inbound(
            s,
            period,
            group_by or ("line",),
            service_level_seconds=service_level_seconds,
            lines=lines,
        )
    show(result, fmt)


@report.command()
@report_options(("day", "week", "month", "campaign"), ("campaign",))
@click.option("--campaign", "campaigns", multiple=True, metavar="NAME", help="Only this campaign.")
@click.option(
    "--outcomes",
    is_flag=True,
    help="Outcomes registered on the campaigns' calls by category and topic instead.",
)
@pass_ctx
@report_errors
def outbound(ctx, first, last, zone, group_by, fmt, campaigns, outcomes):
    """Attempts, contacts reached and abandon rate per campaign/period (or --outcomes).

    Abandon rate = abandoned / answered by a person (reached + abandoned).
    """
    period = _period(first, last, zone)
    with ctx.transaction() as s:
        if outcomes:
            keys = (
                (*group_by, "category", "topic") if group_by else ("campaign", "category", "topic")
            )
            result = reports.outbound_outcomes(s, period, keys, campaigns=campaigns)
        else:
            result = reports.outbound(s, period, group_by or ("campaign",), campaigns=campaigns)
    show(result, fmt)


@report.command()
@report_options(("day", "week", "month", "agent"), ("day", "agent"))
@click.option("--agent", "agents", multiple=True, metavar="USERNAME", help="Only this agent.")
@click.option("--include-logged-out", is_flag=True, help="Also count time logged out.")
@click.option("--no-reasons", is_flag=True, help="One paused total instead of one per reason.")
@pass_ctx
@report_errors
def agents(ctx, first, last, zone, group_by, fmt, agents, include_logged_out, no_reasons):
    """Time in each state per agent and day (tables show h:mm:ss, CSV/JSON seconds)."""
    period = _period(first, last, zone)
    with ctx.transaction() as s:
        result = reports.agent_states(
            s,
            period,
            group_by or ("day", "agent"),
            agents=agents,
            include_logged_out=include_logged_out,
            by_reason=not no_reasons,
        )
    show(result, fmt, durations=("seconds",))


@report.command()
@report_options(
    ("day", "week", "month", "category", "topic", "agent", "line", "campaign"),
    ("category", "topic"),
)
@click.option("--line", "lines", multiple=True, metavar="DID", help="Only this line.")
@click.option("--campaign", "campaigns", multiple=True, metavar="NAME", help="Only this campaign.")
@click.option("--agent", "agents", multiple=True, metavar="USERNAME", help="Only this agent.")
@click.option("--top", type=int, help="Only the N most common groups (e.g. enquiry types).")
@pass_ctx
@report_errors
def enquiries(ctx, first, last, zone, group_by, fmt, lines, campaigns, agents, top):
    """Enquiry counts per category/topic, over time, per agent, line or campaign."""
    period = _period(first, last, zone)
    with ctx.transaction() as s:
        result = reports.enquiries(
            s,
            period,
            group_by or (("topic",) if top else ("category", "topic")),
            lines=lines,
            campaigns=campaigns,
            agents=agents,
            top=top,
        )
    show(result, fmt)
