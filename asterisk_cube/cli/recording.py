"""``asterisk-cube recording``: call recording per line and campaign, retention (F-M4)."""

import asyncio

import click

from asterisk_cube.cli.common import FORMAT_OPTION, CliContext, db_command, emit, pass_ctx
from asterisk_cube.services import recordings as r


@click.group()
def recording() -> None:
    """Call recording: policies per line or campaign, retention, purge."""


@db_command(recording, "set")
@click.option("--line", help="The line's DID.")
@click.option("--campaign", help="The campaign's name.")
@click.option("--mode", type=click.Choice(r.MODES), help="off, all calls, or on demand (desk).")
@click.option(
    "--consent",
    type=click.Choice(r.CONSENTS),
    help="Notice played to both parties before recording: none, a beep, an announcement.",
)
@click.option("--announcement", help="Media for --consent announcement, e.g. sound:my-notice.")
@click.option("--retention", "retention_days", type=int, help="Days a recording is kept.")
def set_(s, line, campaign, mode, consent, announcement, retention_days):
    """Set how a line's or a campaign's calls are recorded."""
    policy = r.set_policy(
        s,
        line=line,
        campaign=campaign,
        mode=mode,
        consent=consent,
        announcement=announcement,
        retention_days=retention_days,
    )
    what = f"line {line}" if line is not None else f"campaign {campaign}"
    d = r.describe(policy)
    return (
        f"recording for {what}: {d['mode']}, consent {d['consent']}, "
        f"kept {d['retention_days']} days"
    )


@db_command(recording, "retention")
@click.argument("days", type=int)
def retention(s, days):
    """Keep recordings DAYS days on every line and campaign that has a policy."""
    count = r.set_retention_everywhere(s, days)
    return f"retention {days} days on {count} recording policies (existing recordings too)"


@db_command(recording, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List the recording policies."""
    emit(
        r.list_policies(s),
        fmt,
        ["scope", "name", "mode", "consent", "announcement", "retention_days"],
    )


@recording.command("purge")
@pass_ctx
def purge(ctx: CliContext) -> None:
    """Delete recordings past their retention now (serve does it every hour)."""
    from asterisk_cube.audio.store import StoredRecordings, purge_expired

    store = StoredRecordings(ctx.settings.ari)
    gone = asyncio.run(purge_expired(ctx.sessions(), store))
    click.echo(f"{gone} expired recordings deleted")
