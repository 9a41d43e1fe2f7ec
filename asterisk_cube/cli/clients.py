"""``asterisk-cube client``: answering-service clients (F-S1..F-S9)."""

import click

from asterisk_cube.cli.common import FORMAT_OPTION, emit, friendly_errors, pass_ctx
from asterisk_cube.services import answering, notes
from asterisk_cube.services import provisioning as p


@click.group()
def client() -> None:
    """Answering-service clients (companies whose calls agents answer)."""


@client.command("add")
@click.argument("name")
@click.option(
    "--greeting", default="", help="Formal greeting; {greeting} becomes good morning/afternoon."
)
@click.option("--greeting-informal", default="", help="Informal greeting.")
@click.option("--instruction", default="", help="First work instruction shown to the agent.")
@click.option(
    "--tone", type=click.Choice(["formal", "informal"]), default="formal", show_default=True
)
@click.option("--timezone", default="Europe/Oslo", show_default=True)
@click.option("--region", default="NO", show_default=True, help="Country for national numbers.")
@click.option("--holiday-country", help="National public holidays to close on, e.g. NO, SE, RS.")
@click.option(
    "--handling", type=click.Choice(["note", "forward"]), default="note", show_default=True
)
@click.option("--forward1", help="First forward target (number or endpoint).")
@click.option("--forward2", help="Second forward target when the first fails.")
@click.option(
    "--closed-handling", type=click.Choice(["note", "announce"]), default="note", show_default=True
)
@click.option("--hours", help="Opening hours, e.g. 'mon-fri 08:00-16:00'.")
@click.option("--adblock/--no-adblock", default=False, show_default=True)
@click.option(
    "--own-number",
    "own_numbers",
    multiple=True,
    help="Client's own number (never a callback number).",
)
@click.option(
    "--recipient", "recipients", multiple=True, help="E-mail for call notes (repeatable)."
)
@pass_ctx
@friendly_errors
def add(
    ctx,
    name,
    greeting,
    greeting_informal,
    instruction,
    tone,
    timezone,
    region,
    holiday_country,
    handling,
    forward1,
    forward2,
    closed_handling,
    hours,
    adblock,
    own_numbers,
    recipients,
):
    """Add a client."""
    with ctx.transaction() as s:
        c = p.add_client(
            s,
            name,
            greeting,
            greeting_informal,
            instruction,
            tone,
            timezone,
            region,
            holiday_country,
            handling,
            forward1,
            forward2,
            closed_handling,
            hours,
            adblock,
            own_numbers,
            recipients,
        )
        click.echo(f"client {c.name} added")


@client.command("hours")
@click.argument("name")
@click.argument("hours")
@pass_ctx
@friendly_errors
def hours_(ctx, name, hours):
    """Replace a client's weekly opening hours, e.g. 'mon-fri 08:00-16:00'."""
    with ctx.transaction() as s:
        p.set_client_hours(s, name, hours)
    click.echo(f"hours of {name} set")


@client.command("special-day")
@click.argument("name")
@click.argument("day")
@click.option("--label", default="", help="e.g. Christmas Eve.")
@click.option("--hours", help="Other hours that day, e.g. 09:00-12:00 (none = closed).")
@pass_ctx
@friendly_errors
def special_day(ctx, name, day, label, hours):
    """Add a holiday (closed) or a day with other hours (YYYY-MM-DD)."""
    with ctx.transaction() as s:
        sd = p.add_special_day(s, name, day, label, hours)
    click.echo(f"{sd.day} is a {sd.kind.value} for {name}")


@client.command("list")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def list_(ctx, fmt):
    """List clients."""
    with ctx.transaction() as s:
        emit(p.client_rows(s), fmt)


# ------------------------------------------------------------------ call notes (F-S9)


@client.command("recipient")
@click.argument("name")
@click.argument("emails", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these addresses instead of adding them.")
@pass_ctx
@friendly_errors
def recipient(ctx, name, emails, remove):
    """Add (or --remove) e-mail addresses that receive the client's call notes."""
    with ctx.transaction() as s:
        if remove:
            answering.remove_recipients(s, name, emails)
            click.echo(f"removed {len(emails)} recipient(s) of {name}")
        else:
            added = answering.add_recipients(s, name, emails)
            click.echo(f"added {len(added)} recipient(s) to {name}")


@client.command("note")
@click.argument("name")
@click.argument("message")
@click.option("--caller-name", default="", help="Who called.")
@click.option("--callback", "callback_number", help="Where the caller wants to be called back.")
@pass_ctx
@friendly_errors
def note(ctx, name, message, caller_name, callback_number):
    """Store a call note for a client; serve mails it to the client's recipients."""
    with ctx.transaction() as s:
        n = notes.create_note(
            s, name, message, caller_name=caller_name, callback_number=callback_number
        )
    click.echo(f"note {n.id} stored for {name}; it is mailed by `asterisk-cube serve`")


@client.command("notes")
@click.option("--client", "client_name", help="Only this client's notes.")
@click.option("--failed", "status", flag_value="failed", help="Only notes whose mail failed.")
@click.option("--pending", "status", flag_value="pending", help="Only notes not mailed yet.")
@click.option("--sent", "status", flag_value="sent", help="Only mailed notes.")
@click.option("--limit", type=int, default=50, show_default=True)
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def notes_(ctx, client_name, status, limit, fmt):
    """List call notes and their mail status (newest first)."""
    with ctx.transaction() as s:
        emit(notes.note_rows(s, notes.NoteFilter(client_name, status, limit)), fmt)


@client.command("resend-notes")
@click.argument("note_ids", nargs=-1, type=int)
@click.option("--client", "client_name", help="Only this client's failed notes.")
@pass_ctx
@friendly_errors
def resend_notes(ctx, note_ids, client_name):
    """Queue notes for mailing again: the given ids, or every failed note."""
    with ctx.transaction() as s:
        ids = notes.resend_notes(s, list(note_ids) or None, client_name)
    click.echo(f"{len(ids)} note(s) queued for mailing" + (f": {ids}" if ids else ""))
