"""``asterisk-cube config``: show the effective settings."""

import json

import click

from asterisk_cube.cli.common import pass_ctx
from asterisk_cube.config import render_toml


@click.group()
def config() -> None:
    """Settings (file, environment, defaults)."""


@config.command()
@click.option("--toml", "as_toml", is_flag=True, help="Print as a TOML file to start from.")
@pass_ctx
def show(ctx, as_toml: bool) -> None:
    """Print the effective settings and where they came from."""
    settings = ctx.settings
    if as_toml:
        click.echo(render_toml(settings))
        return
    data = settings.as_dict()
    for section in ("ari", "ami", "smtp"):
        for key in ("password", "secret"):
            if data[section].get(key):
                data[section][key] = "***"
    click.echo(json.dumps(data, indent=2, default=str))
