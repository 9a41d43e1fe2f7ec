"""``asterisk-cube campaign``: inbound hotlines and outbound dialer campaigns (F-D1, F-D2)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.services import provisioning as p

_WINDOWS_HELP = "Calling windows, e.g. 'mon-fri 09:00-20:00, sat 10:00-16:00'."


@click.group()
def campaign() -> None:
    """Campaigns."""


@db_command(campaign, "add")
@click.argument("name")
@click.option(
    "--direction", type=click.Choice(["inbound", "outbound"]), default="outbound", show_default=True
)
@click.option(
    "--mode", type=click.Choice(["preview", "power", "predictive"]), help="Outbound dial mode."
)
@click.option("--skill", help="Only agents with this skill get its calls.")
@click.option("--caller-id", help="Number shown to contacts; callbacks to it reach the campaign.")
@click.option("--max-attempts", type=int, default=3, show_default=True)
@click.option(
    "--retry-interval", type=int, default=60, show_default=True, help="Minutes between attempts."
)
@click.option("--windows", help=_WINDOWS_HELP)
@click.option("--timezone", default="Europe/Oslo", show_default=True)
@click.option("--region", default="NO", show_default=True, help="Country for national numbers.")
@click.option(
    "--abandon-cap", default="3%", show_default=True, help="Max abandon rate, e.g. 3% or 0.03."
)
@click.option("--wrap-up", type=int, default=15, show_default=True, help="Default wrap-up seconds.")
@click.option(
    "--callback-reservation",
    type=int,
    default=15,
    show_default=True,
    help="Minutes a callback stays reserved.",
)
@click.option("--forced-registration/--no-forced-registration", default=False, show_default=True)
@click.option(
    "--amd/--no-amd", default=False, show_default=True, help="Answering-machine detection."
)
def add(s, name, **options):
    """Add a campaign (stopped until started)."""
    c = p.add_campaign(s, name, **options)
    return f"campaign {c.name} added ({c.direction.value}{', ' + c.mode.value if c.mode else ''})"


@db_command(campaign, "set")
@click.argument("name")
@click.option("--mode", type=click.Choice(["preview", "power", "predictive"]))
@click.option("--skill")
@click.option("--caller-id")
@click.option("--max-attempts", type=int)
@click.option("--retry-interval", type=int)
@click.option("--windows", help=_WINDOWS_HELP)
@click.option("--timezone")
@click.option("--abandon-cap")
@click.option("--wrap-up", type=int)
@click.option("--callback-reservation", type=int)
@click.option("--forced-registration/--no-forced-registration", default=None)
@click.option("--amd/--no-amd", default=None)
def set_(s, name, **changes):
    """Change a campaign."""
    p.update_campaign(s, name, **changes)
    return f"campaign {name} updated"


def _status_command(verb: str, status: str):
    @db_command(campaign, verb, help=f"{verb.capitalize()} a campaign's dialing.")
    @click.argument("name")
    def command(s, name):
        p.set_campaign_status(s, name, status)
        return f"campaign {name} {status}"

    return command


start = _status_command("start", "running")
stop = _status_command("stop", "stopped")
pause = _status_command("pause", "paused")


@db_command(campaign, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List campaigns with their contacts."""
    emit(p.campaign_rows(s), fmt)
