"""``asterisk-cube config``: show the effective settings."""

import json

import click

from asterisk_cube.cli.common import pass_ctx
from asterisk_cube.config import masked, render_toml


@click.group()
def config() -> None:
    """Settings (file, environment, defaults)."""


@config.command()
@click.option("--toml", "as_toml", is_flag=True, help="Print as a TOML file to start from.")
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print passwords, the web session key and the database password as they are.",
)
@pass_ctx
def show(ctx, as_toml: bool, show_secrets: bool) -> None:
    """Print the effective settings and where they came from.

    Credentials (ARI/AMI/SMTP passwords, web.secret_key, the password in database.url)
    are printed as *** unless --show-secrets is given."""
    settings = ctx.settings if show_secrets else masked(ctx.settings)
    if as_toml:
        click.echo(render_toml(settings))
        return
    click.echo(json.dumps(settings.as_dict(), indent=2, default=str))
