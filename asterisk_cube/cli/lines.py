"""``asterisk-cube line``: inbound numbers (DIDs) with priorities (F-I1)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, emit, friendly_errors, pass_ctx
from asterisk_cube.services import provisioning as p


@click.group()
def line() -> None:
    """Inbound lines (DIDs)."""


@line.command("add")
@click.argument("did")
@click.option("--name", help="Display name (default: the DID).")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher is served first.")
@click.option("--campaign", help="Inbound campaign this hotline creates contacts in.")
@click.option("--client", help="Answering-service client answered on this line.")
@click.option(
    "--offer-timeout", type=int, default=20, show_default=True, help="Seconds to accept an offer."
)
@click.option("--announcement", help="Sound played to waiting callers.")
@pass_ctx
@friendly_errors
def add(ctx, did, name, priority, campaign, client, offer_timeout, announcement):
    """Add a line. Without --campaign or --client it is a service line."""
    with ctx.transaction() as s:
        line_ = p.add_line(s, did, name, priority, campaign, client, offer_timeout, announcement)
        click.echo(f"line {line_.did} added (priority {line_.priority})")


@line.command("set")
@click.argument("did")
@click.option("--name")
@click.option("--priority", type=int)
@click.option("--offer-timeout", type=int)
@click.option("--announcement")
@click.option("--enabled/--disabled", default=None)
@pass_ctx
@friendly_errors
def set_(ctx, did, name, priority, offer_timeout, announcement, enabled):
    """Change a line."""
    with ctx.transaction() as s:
        p.update_line(
            s,
            did,
            name=name,
            priority=priority,
            offer_timeout=offer_timeout,
            announcement=announcement,
            enabled=enabled,
        )
        if priority is not None:
            p.audit(s, "cli", "line_priority", did, priority=priority)
    click.echo(f"line {did} updated")


@line.command("remove")
@click.argument("did")
@pass_ctx
@friendly_errors
def remove(ctx, did):
    """Remove a line."""
    with ctx.transaction() as s:
        p.remove_line(s, did)
    click.echo(f"line {did} removed")


@line.command("list")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def list_(ctx, fmt):
    """List lines, highest priority first."""
    with ctx.transaction() as s:
        emit(p.line_rows(s), fmt)
