"""``asterisk-cube client``: answering-service clients (F-S1..F-S9)."""

import click

from asterisk_cube.cli.common import (
    FORMAT_OPTION,
    emit,
    friendly_errors,
    pass_ctx,
    print_import_report,
)
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
    "--forward-timeout",
    type=int,
    default=20,
    show_default=True,
    help="Seconds each forward target may ring.",
)
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
    forward_timeout,
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
            forward_timeout=forward_timeout,
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


VALID_ONLY = click.option(
    "--valid-only",
    is_flag=True,
    help="Store the valid rows and report the rest (default: store nothing if any row is bad).",
)
JSON_REPORT = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
HANDLING = click.option("--handling", type=click.Choice(["note", "forward"]))
FORWARD1 = click.option("--forward1", help="First forward target (number or PJSIP/...).")
FORWARD2 = click.option("--forward2", help="Second forward target when the first fails.")


# ------------------------------------------------------------------ exceptions (F-S3)


@client.group("exception")
def exception_() -> None:
    """ "Current" exceptions: temporary instructions that override standard handling."""


@exception_.command("add")
@click.argument("name")
@click.argument("instruction")
@click.option(
    "--until",
    required=True,
    help="End, in the client's time zone: YYYY-MM-DD (inclusive) or 'YYYY-MM-DD HH:MM'.",
)
@click.option("--from", "starts", help="Start (same format; default now).")
@HANDLING
@FORWARD1
@FORWARD2
@pass_ctx
@friendly_errors
def exception_add(ctx, name, instruction, until, starts, handling, forward1, forward2):
    """Add an exception shown above the script; with --handling it overrides the standard."""
    with ctx.transaction() as s:
        e = answering.add_exception(
            s, name, instruction, until, starts, handling, forward1, forward2
        )
        click.echo(f"exception {e.id} added to {name}")


@exception_.command("list")
@click.argument("name")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def exception_list(ctx, name, fmt):
    """List a client's exceptions (times in the client's zone)."""
    with ctx.transaction() as s:
        emit(answering.exception_rows(s, name), fmt)


@exception_.command("remove")
@click.argument("name")
@click.argument("exception_id", type=int)
@pass_ctx
@friendly_errors
def exception_remove(ctx, name, exception_id):
    """Remove an exception."""
    with ctx.transaction() as s:
        answering.remove_exception(s, name, exception_id)
    click.echo(f"exception {exception_id} removed")


# ------------------------------------------------------------------ employees (F-S4)


@client.group("employee")
def employee() -> None:
    """A client's employees/departments, each with its own handling."""


@employee.command("add")
@click.argument("name")
@click.argument("employee_name")
@click.option("--department", default="")
@click.option("--title", default="")
@click.option("--email")
@HANDLING
@FORWARD1
@FORWARD2
@click.option("--info", default="", help="Extra information shown to the agent.")
@pass_ctx
@friendly_errors
def employee_add(
    ctx, name, employee_name, department, title, email, handling, forward1, forward2, info
):
    """Add an employee (or a department: leave the name as the department's)."""
    with ctx.transaction() as s:
        answering.add_employee(
            s,
            name,
            name=employee_name,
            department=department,
            title=title,
            email=email,
            handling=handling,
            forward1=forward1,
            forward2=forward2,
            info=info,
        )
    click.echo(f"employee {employee_name} added to {name}")


@employee.command("import")
@click.argument("name")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@VALID_ONLY
@click.option("--replace", is_flag=True, help="Replace the whole employee list with the file's.")
@JSON_REPORT
@pass_ctx
@friendly_errors
def employee_import(ctx, name, csv_file, valid_only, replace, as_json):
    """Import employees from CSV: name, department, title, email, handling, target1, target2,
    info (header row; only name is required)."""
    with ctx.transaction() as s:
        report = answering.import_employees(s, name, csv_file, valid_only, replace)
    print_import_report(report, as_json, name)


@employee.command("list")
@click.argument("name")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def employee_list(ctx, name, fmt):
    """List a client's employees."""
    with ctx.transaction() as s:
        emit(answering.employee_rows(s, name), fmt)


@employee.command("remove")
@click.argument("name")
@click.argument("employee_name")
@pass_ctx
@friendly_errors
def employee_remove(ctx, name, employee_name):
    """Remove an employee."""
    with ctx.transaction() as s:
        answering.remove_employee(s, name, employee_name)
    click.echo(f"employee {employee_name} removed from {name}")


# ------------------------------------------------------------------ FAQ (F-S5)


@client.group("faq")
def faq() -> None:
    """FAQ entries: the agent's entry point when handling depends on the caller's request."""


@faq.command("add")
@click.argument("name")
@click.argument("question")
@click.argument("answer")
@HANDLING
@click.option("--employee", help="Employee whose handling applies to this question.")
@click.option("--position", type=int, help="Order in the list (default: last).")
@pass_ctx
@friendly_errors
def faq_add(ctx, name, question, answer, handling, employee, position):
    """Add a FAQ entry."""
    with ctx.transaction() as s:
        f = answering.add_faq(s, name, question, answer, handling, employee, position)
        click.echo(f"FAQ entry {f.id} added to {name}")


@faq.command("list")
@click.argument("name")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def faq_list(ctx, name, fmt):
    """List a client's FAQ entries."""
    with ctx.transaction() as s:
        emit(answering.faq_rows(s, name), fmt)


# ------------------------------------------------------------------ blocklists (F-S6)


@client.group("blocklist")
def blocklist() -> None:
    """Ad-blocking lists: global (default) or one client's (--client)."""


CLIENT_LIST = click.option("--client", "client_name", help="The client's list (default: global).")


@blocklist.command("add")
@click.argument("numbers", nargs=-1, required=True)
@CLIENT_LIST
@click.option("--advertiser", is_flag=True, help="Mark as known advertiser numbers.")
@click.option("--reason", default="", help="Why (shown in lists).")
@pass_ctx
@friendly_errors
def blocklist_add(ctx, numbers, client_name, advertiser, reason):
    """Block numbers; end one with * to block every number starting so (+4782*)."""
    with ctx.transaction() as s:
        rows = answering.add_blocks(s, numbers, client_name, advertiser, reason)
    where = f"{client_name}'s blocklist" if client_name else "the global blocklist"
    click.echo(f"added {len(rows)} entr{'y' if len(rows) == 1 else 'ies'} to {where}")


@blocklist.command("remove")
@click.argument("number")
@CLIENT_LIST
@pass_ctx
@friendly_errors
def blocklist_remove(ctx, number, client_name):
    """Remove a number or prefix (with its *) from a list."""
    with ctx.transaction() as s:
        answering.remove_block(s, number, client_name)
    click.echo(f"removed {number}")


@blocklist.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@CLIENT_LIST
@click.option("--advertiser", is_flag=True, help="Rows without a known_advertiser value are.")
@VALID_ONLY
@JSON_REPORT
@pass_ctx
@friendly_errors
def blocklist_import(ctx, csv_file, client_name, advertiser, valid_only, as_json):
    """Import a blocklist from CSV: number (* suffix = prefix), known_advertiser, reason."""
    with ctx.transaction() as s:
        report = answering.import_blocklist(s, csv_file, client_name, valid_only, advertiser)
    print_import_report(
        report, as_json, f"{client_name}'s blocklist" if client_name else "the global list"
    )


@blocklist.command("list")
@CLIENT_LIST
@click.option("--all", "everything", is_flag=True, help="Every list, global and per client.")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def blocklist_list(ctx, client_name, everything, fmt):
    """List blocklist entries."""
    with ctx.transaction() as s:
        emit(answering.block_rows(s, client_name, everything), fmt)
