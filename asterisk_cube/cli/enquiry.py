"""``asterisk-cube enquiry``: enquiry categories and topics (F-E1, F-E4)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, emit, friendly_errors, pass_ctx
from asterisk_cube.services import provisioning as p


@click.group()
def enquiry() -> None:
    """Enquiry registration categories and topics."""


@enquiry.command("add-category")
@click.argument("name")
@click.option("--multi", is_flag=True, help="Several topics may be chosen (default: one).")
@click.option("--campaign", help="Show only on this campaign's calls (campaign category).")
@click.option("--position", type=int, default=0)
@pass_ctx
@friendly_errors
def add_category(ctx, name, multi, campaign, position):
    """Add a category."""
    with ctx.transaction() as s:
        p.add_category(s, name, multi, campaign, position)
    click.echo(f"category {name} added")


@enquiry.command("add-topic")
@click.argument("category")
@click.argument("topics", nargs=-1, required=True)
@click.option("--campaign", help="The category's campaign, for campaign categories.")
@click.option(
    "--outcome",
    type=click.Choice(["none", "final", "retry", "callback"]),
    default="none",
    show_default=True,
    help="Effect on an outbound contact: final closes it, retry re-dials it (F-E5).",
)
@pass_ctx
@friendly_errors
def add_topic(ctx, category, topics, campaign, outcome):
    """Add topics to a category."""
    with ctx.transaction() as s:
        p.add_topics(s, category, topics, outcome, campaign)
    click.echo(f"{len(topics)} topic(s) added to {category}")


@enquiry.command("list")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def list_(ctx, fmt):
    """List categories and their topics."""
    with ctx.transaction() as s:
        emit(p.enquiry_rows(s), fmt)
