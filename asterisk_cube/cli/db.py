"""``asterisk-cube db``: schema migrations."""

import click

from asterisk_cube.cli.common import friendly_errors, pass_ctx
from asterisk_cube.db import session as dbs
from asterisk_cube.redact import redact


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_ctx
@friendly_errors
def upgrade(ctx, revision: str) -> None:
    """Create or migrate the schema to the newest version."""
    url = ctx.settings.database_url
    dbs.check_url(url)  # a relative SQLite path or a missing driver: say so, create nothing
    try:
        dbs.upgrade(url, revision)
    except Exception as exc:  # alembic raises many types; the message is what matters
        raise click.ClickException(f"migration failed: {redact(str(exc))}") from None
    current, _ = dbs.schema_status(dbs.make_engine(url))
    click.echo(f"database at revision {current}: {_safe_url(url)}")


@db.command()
@pass_ctx
@friendly_errors
def status(ctx) -> None:
    """Show the schema revision in the database and the newest shipped."""
    url = ctx.settings.database_url
    dbs.require_database(url)
    current, head = dbs.schema_status(dbs.make_engine(url))
    state = "up to date" if current == head else "needs `asterisk-cube db upgrade`"
    click.echo(f"{_safe_url(url)}: revision {current or 'none'}, newest {head} ({state})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
