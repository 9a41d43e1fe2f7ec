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


@config.command()
@click.option("--env", "as_env", is_flag=True, help="Print the example environment file.")
@click.option(
    "--executable",
    help="ExecStart's asterisk-cube (default: the one running this command).",
)
def systemd(as_env: bool, executable: str | None) -> None:
    """Print the systemd unit shipped with the package (Type=notify, watchdog, an
    unprivileged user owning /var/lib/asterisk-cube, LimitNOFILE raised).

    \b
    asterisk-cube config systemd > /etc/systemd/system/asterisk-cube.service
    asterisk-cube config systemd --env > /etc/default/asterisk-cube"""
    from asterisk_cube import systemd as sd

    click.echo(sd.environment_file() if as_env else sd.unit_file(executable), nl=False)
