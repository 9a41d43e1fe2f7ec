"""``asterisk-cube client``: answering-service clients (F-S1..F-S9)."""

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
from asterisk_cube.services import answering, notes
from asterisk_cube.services import provisioning as p


@click.group()
def client() -> None:
    """Answering-service clients (companies whose calls agents answer)."""


@db_command(client, "add")
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
    help="Client's own number, or a series with a trailing * (+4723450*): never a callback number.",
)
@click.option(
    "--recipient", "recipients", multiple=True, help="E-mail for call notes (repeatable)."
)
def add(s, name, **options):
    """Add a client."""
    c = p.add_client(s, name, **options)
    return f"client {c.name} added"


@db_command(client, "hours")
@click.argument("name")
@click.argument("hours")
def hours_(s, name, hours):
    """Replace a client's weekly opening hours, e.g. 'mon-fri 08:00-16:00'."""
    p.set_client_hours(s, name, hours)
    return f"hours of {name} set"


@db_command(client, "special-day")
@click.argument("name")
@click.argument("day")
@click.option("--label", default="", help="e.g. Christmas Eve.")
@click.option("--hours", help="Other hours that day, e.g. 09:00-12:00 (none = closed).")
def special_day(s, name, day, label, hours):
    """Add a holiday (closed) or a day with other hours (YYYY-MM-DD)."""
    sd = p.add_special_day(s, name, day, label, hours)
    return f"{sd.day} is a {sd.kind.value} for {name}"


@db_command(client, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List clients."""
    emit(p.client_rows(s), fmt)


# ------------------------------------------------------------------ call notes (F-S9)


@db_command(client, "recipient")
@click.argument("name")
@click.argument("emails", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these addresses instead of adding them.")
def recipient(s, name, emails, remove):
    """Add (or --remove) e-mail addresses that receive the client's call notes."""
    if remove:
        answering.remove_recipients(s, name, emails)
        return f"removed {len(emails)} recipient(s) of {name}"
    added = answering.add_recipients(s, name, emails)
    return f"added {len(added)} recipient(s) to {name}"


@db_command(client, "note")
@click.argument("name")
@click.argument("message")
@click.option("--caller-name", default="", help="Who called.")
@click.option("--callback", "callback_number", help="Where the caller wants to be called back.")
def note(s, name, message, caller_name, callback_number):
    """Store a call note for a client; serve mails it to the client's recipients."""
    n = notes.create_note(
        s, name, message, caller_name=caller_name, callback_number=callback_number
    )
    return f"note {n.id} stored for {name}; it is mailed by `asterisk-cube serve`"


@db_command(client, "notes")
@click.option("--client", "client_name", help="Only this client's notes.")
@click.option("--failed", "status", flag_value="failed", help="Only notes whose mail failed.")
@click.option("--pending", "status", flag_value="pending", help="Only notes not mailed yet.")
@click.option("--sent", "status", flag_value="sent", help="Only mailed notes.")
@click.option("--limit", type=int, default=50, show_default=True)
@FORMAT_OPTION
def notes_(s, client_name, status, limit, fmt):
    """List call notes and their mail status (newest first)."""
    emit(notes.note_rows(s, notes.NoteFilter(client_name, status, limit)), fmt)


@db_command(client, "resend-notes")
@click.argument("note_ids", nargs=-1, type=int)
@click.option("--client", "client_name", help="Only this client's failed notes.")
def resend_notes(s, note_ids, client_name):
    """Queue notes for mailing again: the given ids, or every failed note."""
    ids = notes.resend_notes(s, list(note_ids) or None, client_name)
    return f"{len(ids)} note(s) queued for mailing" + (f": {ids}" if ids else "")


HANDLING = click.option("--handling", type=click.Choice(["note", "forward"]))
FORWARD1 = click.option("--forward1", help="First forward target (number or PJSIP/...).")
FORWARD2 = click.option("--forward2", help="Second forward target when the first fails.")


# ------------------------------------------------------------------ exceptions (F-S3)


@client.group("exception")
def exception_() -> None:
    """ "Current" exceptions: temporary instructions that override standard handling."""


@db_command(exception_, "add")
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
def exception_add(s, name, instruction, until, starts, handling, forward1, forward2):
    """Add an exception shown above the script; with --handling it overrides the standard."""
    e = answering.add_exception(s, name, instruction, until, starts, handling, forward1, forward2)
    return f"exception {e.id} added to {name}"


@db_command(exception_, "list")
@click.argument("name")
@FORMAT_OPTION
def exception_list(s, name, fmt):
    """List a client's exceptions (times in the client's zone)."""
    emit(answering.exception_rows(s, name), fmt)


@db_command(exception_, "remove")
@click.argument("name")
@click.argument("exception_id", type=int)
def exception_remove(s, name, exception_id):
    """Remove an exception."""
    answering.remove_exception(s, name, exception_id)
    return f"exception {exception_id} removed"


# ------------------------------------------------------------------ employees (F-S4)


@client.group("employee")
def employee() -> None:
    """A client's employees/departments, each with its own handling."""


@db_command(employee, "add")
@click.argument("name")
@click.argument("employee_name")
@click.option("--department", default="")
@click.option("--title", default="")
@click.option("--email")
@HANDLING
@FORWARD1
@FORWARD2
@click.option("--info", default="", help="Extra information shown to the agent.")
def employee_add(s, name, employee_name, **details):
    """Add an employee (or a department: leave the name as the department's)."""
    answering.add_employee(s, name, name=employee_name, **details)
    return f"employee {employee_name} added to {name}"


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


@db_command(employee, "list")
@click.argument("name")
@FORMAT_OPTION
def employee_list(s, name, fmt):
    """List a client's employees."""
    emit(answering.employee_rows(s, name), fmt)


@db_command(employee, "remove")
@click.argument("name")
@click.argument("employee_name")
def employee_remove(s, name, employee_name):
    """Remove an employee."""
    answering.remove_employee(s, name, employee_name)
    return f"employee {employee_name} removed from {name}"


# ------------------------------------------------------------------ FAQ (F-S5)


@client.group("faq")
def faq() -> None:
    """FAQ entries: the agent's entry point when handling depends on the caller's request."""


@db_command(faq, "add")
@click.argument("name")
@click.argument("question")
@click.argument("answer")
@HANDLING
@click.option("--employee", help="Employee whose handling applies to this question.")
@click.option("--position", type=int, help="Order in the list (default: last).")
def faq_add(s, name, question, answer, handling, employee, position):
    """Add a FAQ entry."""
    f = answering.add_faq(s, name, question, answer, handling, employee, position)
    return f"FAQ entry {f.id} added to {name}"


@db_command(faq, "list")
@click.argument("name")
@FORMAT_OPTION
def faq_list(s, name, fmt):
    """List a client's FAQ entries."""
    emit(answering.faq_rows(s, name), fmt)


# ------------------------------------------------------------------ blocklists (F-S6)


@client.group("blocklist")
def blocklist() -> None:
    """Ad-blocking lists: global (default) or one client's (--client)."""


CLIENT_LIST = click.option("--client", "client_name", help="The client's list (default: global).")


@db_command(blocklist, "add")
@click.argument("numbers", nargs=-1, required=True)
@CLIENT_LIST
@click.option("--advertiser", is_flag=True, help="Mark as known advertiser numbers.")
@click.option("--reason", default="", help="Why (shown in lists).")
def blocklist_add(s, numbers, client_name, advertiser, reason):
    """Block numbers; end one with * to block every number starting so (+4782*)."""
    rows = answering.add_blocks(s, numbers, client_name, advertiser, reason)
    where = f"{client_name}'s blocklist" if client_name else "the global blocklist"
    return f"added {len(rows)} entr{'y' if len(rows) == 1 else 'ies'} to {where}"


@db_command(blocklist, "remove")
@click.argument("number")
@CLIENT_LIST
def blocklist_remove(s, number, client_name):
    """Remove a number or prefix (with its *) from a list."""
    answering.remove_block(s, number, client_name)
    return f"removed {number}"


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


@db_command(blocklist, "list")
@CLIENT_LIST
@click.option("--all", "everything", is_flag=True, help="Every list, global and per client.")
@FORMAT_OPTION
def blocklist_list(s, client_name, everything, fmt):
    """List blocklist entries."""
    emit(answering.block_rows(s, client_name, everything), fmt)
