"""``asterisk-cube demo``: load demo data (lines, agents, campaigns, a client, enquiries)."""

import click

from asterisk_cube.cli.common import friendly_errors, pass_ctx
from asterisk_cube.services.demo_data import load_demo


@click.group()
def demo() -> None:
    """Demo data for trying asterisk-cube out."""


@demo.command("load")
@click.option("--agents", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option(
    "--password", default="demo-password", show_default=True, help="Password of every demo user."
)
@pass_ctx
@friendly_errors
def load(ctx, agents, password):
    """Provision demo data (skipped if it is already there)."""
    with ctx.transaction() as s:
        summary = load_demo(s, agents=agents, password=password)
    click.echo(summary)
