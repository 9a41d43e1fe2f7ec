"""``asterisk-cube enquiry``: enquiry categories and topics (F-E1, F-E4)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.services import provisioning as p


@click.group()
def enquiry() -> None:
    """Enquiry registration categories and topics."""


@db_command(enquiry, "add-category")
@click.argument("name")
@click.option("--multi", is_flag=True, help="Several topics may be chosen (default: one).")
@click.option("--campaign", help="Show only on this campaign's calls (campaign category).")
@click.option("--position", type=int, default=0)
def add_category(s, name, multi, campaign, position):
    """Add a category."""
    p.add_category(s, name, multi, campaign, position)
    return f"category {name} added"


@db_command(enquiry, "add-topic")
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
def add_topic(s, category, topics, campaign, outcome):
    """Add topics to a category."""
    p.add_topics(s, category, topics, outcome, campaign)
    return f"{len(topics)} topic(s) added to {category}"


@db_command(enquiry, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List categories and their topics."""
    emit(p.enquiry_rows(s), fmt)
