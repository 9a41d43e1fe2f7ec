"""``asterisk-cube dialplan``: render the generated dialplan, install it and reload Asterisk."""

import datetime as dt

import click

from asterisk_cube import dialplan as dp
from asterisk_cube.cli.common import friendly_errors, pass_ctx


@click.group()
def dialplan() -> None:
    """Generated dialplan (include it from extensions.conf)."""


@dialplan.command()
@pass_ctx
@friendly_errors
def show(ctx):
    """Print the dialplan rendered from the current configuration."""
    with ctx.transaction() as s:
        click.echo(dp.render(s, ctx.settings), nl=False)


@dialplan.command()
@click.option("--no-reload", is_flag=True, help="Only write the file; don't reload Asterisk.")
@click.option("--path", help="Write here instead of the configured dialplan path.")
@pass_ctx
@friendly_errors
def install(ctx, no_reload, path):
    """Write the dialplan file and reload it in Asterisk over AMI."""
    with ctx.transaction() as s:
        dp.record_sip_address(s, ctx.settings, dt.datetime.now(dt.UTC))
        text = dp.render(s, ctx.settings)
        trunk = dp.render_trunk(s, ctx.settings)
    try:
        click.echo(
            dp.install(text, ctx.settings, path=path, reload=not no_reload, trunk_text=trunk)
        )
    except dp.DialplanInstallError as exc:
        raise click.ClickException(str(exc)) from None
