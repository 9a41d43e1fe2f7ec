"""``asterisk-cube line``: inbound numbers (DIDs) with priorities (F-I1)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.services import provisioning as p

# A running serve takes line changes by itself (db.config_version); Asterisk routes a DID
# only once the generated dialplan has it.
DIALPLAN_HINT = "run `asterisk-cube dialplan install` so that Asterisk routes it"


@click.group()
def line() -> None:
    """Inbound lines (DIDs)."""


@db_command(line, "add")
@click.argument("did")
@click.option("--name", help="Display name (default: the DID).")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher is served first.")
@click.option("--campaign", help="Inbound campaign this hotline creates contacts in.")
@click.option("--client", help="Answering-service client answered on this line.")
@click.option(
    "--offer-timeout", type=int, default=20, show_default=True, help="Seconds to accept an offer."
)
@click.option("--announcement", help="Sound played to waiting callers.")
def add(s, did, **options):
    """Add a line. Without --campaign or --client it is a service line."""
    line_ = p.add_line(s, did, **options)
    return f"line {line_.did} added (priority {line_.priority}); {DIALPLAN_HINT}"


@db_command(line, "set")
@click.argument("did")
@click.option("--name")
@click.option("--priority", type=int)
@click.option("--offer-timeout", type=int)
@click.option("--announcement")
@click.option("--enabled/--disabled", default=None)
def set_(s, did, priority, **changes):
    """Change a line."""
    p.update_line(s, did, priority=priority, **changes)
    if priority is not None:
        p.audit(s, "cli", "line_priority", did, priority=priority)
    return f"line {did} updated"


@db_command(line, "remove")
@click.argument("did")
def remove(s, did):
    """Remove a line."""
    p.remove_line(s, did)
    return f"line {did} removed; {DIALPLAN_HINT}"


@db_command(line, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List lines, highest priority first."""
    emit(p.line_rows(s), fmt)
