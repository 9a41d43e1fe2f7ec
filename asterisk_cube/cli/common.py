"""What every CLI command shares: settings, database sessions, output, errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.config import ConfigError, Settings, load_settings
from asterisk_cube.core.text import control_problem, csv_text
from asterisk_cube.db.session import (
    make_engine,
    make_sessionmaker,
    require_database,
    schema_status,
    transaction,
)
from asterisk_cube.redact import redact
from asterisk_cube.services.provisioning import ProvisioningError


@dataclass
class CliContext:
    config_path: str | None = None
    _settings: Settings | None = None
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(f"configuration: {exc}") from None
        return self._settings

    def sessions(self, check_schema: bool = True) -> sessionmaker[Session]:
        if self._sessions is None:
            if check_schema:  # reads an existing database: never create an empty file
                require_database(self.settings.database_url)
            engine = make_engine(self.settings.database_url)
            if check_schema:
                try:
                    current, head = schema_status(engine)
                except OperationalError as exc:
                    raise click.ClickException(
                        f"cannot open the database: {redact(str(exc.orig))}"
                    ) from None
                if current != head:
                    raise click.ClickException(
                        "the database schema is not up to date "
                        f"(at {current or 'nothing'}, need {head}): run `asterisk-cube db upgrade`"
                    )
            self._sessions = make_sessionmaker(engine)
        return self._sessions

    def transaction(self):
        return transaction(self.sessions())


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)


#: CLI parameters that may span lines (a FAQ answer, a note, a work instruction).
MULTILINE_PARAMS = frozenset({"answer", "message", "instruction", "comment", "info"})


def check_text_params(params: dict[str, Any]) -> None:
    """Refuse a text argument with a control character (``--name $'A\\nB'``), naming it."""
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if not isinstance(item, str):
                continue
            problem = control_problem(item, multiline=key in MULTILINE_PARAMS)
            if problem:
                raise click.ClickException(f"{key.replace('_', '-')}: {problem}")


def friendly_errors(fn: Callable) -> Callable:
    """Turn the errors users can cause into one-line messages and exit status 1; refuse
    text arguments with control characters before anything runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_text_params(kwargs)
        try:
            return fn(*args, **kwargs)
        except (ProvisioningError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
        except IntegrityError as exc:
            raise click.ClickException(
                f"conflicts with stored data: {redact(str(exc.orig))}"
            ) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {redact(str(exc))}") from None

    return wrapper


def db_command(group: click.Group, name: str, **attrs: Any) -> Callable[[Callable], click.Command]:
    """Make ``body(session, **params)`` the subcommand ``name`` of ``group``.

    The body runs in one database transaction, with the errors users can cause turned into
    one-line messages (:func:`friendly_errors`). The line it returns, if any, is printed
    after the commit, so a write that fails to commit never reports success. Click's
    ``@click.argument``/``@click.option`` decorators go below this one, as on any command.
    """

    def decorate(body: Callable[..., str | None]) -> click.Command:
        @functools.wraps(body)
        def command(ctx: CliContext, /, **params: Any) -> None:
            with ctx.transaction() as s:
                line = body(s, **params)
            if line is not None:
                click.echo(line)

        return group.command(name, **attrs)(pass_ctx(friendly_errors(command)))

    return decorate


FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def emit(
    rows: Sequence[dict[str, Any]], fmt: str = "table", columns: Sequence[str] | None = None
) -> None:
    """Print rows as an aligned table, JSON or CSV."""
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        click.echo(
            json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, default=str)
        )
        return
    if fmt == "csv":  # formula-like cells quote-prefixed (OWASP; docs/reports.md)
        click.echo(csv_text(columns, rows), nl=False)
        return
    if not rows:
        click.echo("(none)")
        return

    def cell(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        return "" if v is None else str(v)

    widths = [max(len(c), *(len(cell(r.get(c))) for r in rows)) for c in columns]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in rows:
        click.echo(
            "  ".join(
                cell(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)
            ).rstrip()
        )


VALID_ONLY = click.option(
    "--valid-only",
    is_flag=True,
    help="Store the valid rows and report the rest (default: store nothing if any row is bad).",
)
JSON_REPORT = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


def print_import_report(report: Any, as_json: bool, where: str) -> None:
    """Print an import report (row-numbered rejections on stderr); exit 1 if nothing stored."""
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for err in report.rejected:
            click.echo(f"row {err.row}: {err.reason}", err=True)
        if report.stored:
            click.echo(
                f"imported {report.imported} of {report.rows_read} rows into {where}"
                + (f"; {len(report.rejected)} rejected" if report.rejected else "")
            )
    if not report.stored:
        if report.rejected:
            raise click.ClickException(
                f"nothing imported: {len(report.rejected)} of {report.rows_read} rows rejected "
                "(fix them, or use --valid-only to import the rest)"
            )
        raise click.ClickException("nothing imported: no valid rows")
