"""``asterisk-cube missed``: the missed calls (F-I7), as the desk lists them and more."""

from __future__ import annotations

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.reports.common import ReportError, check_zone, system_zone
from asterisk_cube.services import missed as ms

COLUMNS = ["id", "missed_at", "line", "caller", "processed_at", "processed_by", "callback_state"]


@click.group()
def missed() -> None:
    """Missed calls: callers who hung up while waiting (F-I7)."""


@db_command(missed, "list")
@click.option("--line", "lines", multiple=True, metavar="DID", help="Only this line; repeat.")
@click.option("--since", help="From this day or time on, e.g. 2026-11-23 or '2026-11-23 08:00'.")
@click.option(
    "--state",
    type=click.Choice(ms.STATES),
    default="open",
    show_default=True,
    help="open: not processed yet; processed; all.",
)
@click.option(
    "--zone",
    default=system_zone,
    envvar="ASTERISK_CUBE_REPORT_ZONE",
    show_default="the machine's zone",
    help="IANA time zone of --since and of the times shown.",
)
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True)
@FORMAT_OPTION
def list_(s, lines, since, state, zone, limit, fmt):
    """Missed calls, oldest first, with who processed them and how the callback went."""
    try:
        zone = check_zone(zone)
    except ReportError as exc:
        raise click.ClickException(f"--zone: {exc}") from None
    start = ms.parse_since(since, zone) if since else None
    rows = ms.missed_calls(s, lines=lines, since=start, state=state, zone=zone, limit=limit)
    emit(rows, fmt, COLUMNS if fmt == "table" else list(rows[0]) if rows else COLUMNS)
