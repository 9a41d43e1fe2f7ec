"""``asterisk-cube contacts``: contact lists from CSV (F-D1)."""

import click

from asterisk_cube.cli.common import (
    FORMAT_OPTION,
    JSON_REPORT,
    VALID_ONLY,
    db_command,
    emit,
    friendly_errors,
    pass_ctx,
    print_import_report,
)
from asterisk_cube.db import models as m
from asterisk_cube.services.contact_import import import_contacts
from asterisk_cube.services.contacts import contact_rows


@click.group()
def contacts() -> None:
    """Campaign contacts."""


@contacts.command("import")
@click.argument("campaign")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@VALID_ONLY
@click.option("--list-name", help="Name of the list (default: the file name).")
@JSON_REPORT
@pass_ctx
@friendly_errors
def import_(ctx, campaign, csv_file, valid_only, list_name, as_json):
    """Import contacts from a CSV file with a header row and a phone column."""
    with ctx.transaction() as s:
        report = import_contacts(s, campaign, csv_file, valid_only=valid_only, list_name=list_name)
    print_import_report(report, as_json, report.campaign)


@db_command(contacts, "list")
@click.argument("campaign")
@click.option("--status", type=click.Choice([s.value for s in m.ContactStatus]))
@click.option("--limit", type=int, default=50, show_default=True)
@FORMAT_OPTION
def list_(s, campaign, status, limit, fmt):
    """List a campaign's contacts."""
    rows = contact_rows(s, campaign, status, limit)
    emit(rows, fmt)
