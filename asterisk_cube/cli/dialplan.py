"""``asterisk-cube dialplan``: render the generated dialplan, install it and reload Asterisk."""

import click

from asterisk_cube.ami.commands import AmiError, run_command
from asterisk_cube.cli.common import friendly_errors, pass_ctx
from asterisk_cube.dialplan import render, write_atomically


@click.group()
def dialplan() -> None:
    """Generated dialplan (include it from extensions.conf)."""


@dialplan.command()
@pass_ctx
@friendly_errors
def show(ctx):
    """Print the dialplan rendered from the current configuration."""
    with ctx.transaction() as s:
        click.echo(render(s, ctx.settings), nl=False)


@dialplan.command()
@click.option("--no-reload", is_flag=True, help="Only write the file; don't reload Asterisk.")
@click.option("--path", help="Write here instead of the configured dialplan path.")
@pass_ctx
@friendly_errors
def install(ctx, no_reload, path):
    """Write the dialplan file and reload it in Asterisk over AMI."""
    settings = ctx.settings
    target = path or settings.dialplan.path
    with ctx.transaction() as s:
        text = render(s, settings)
    try:
        write_atomically(target, text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"wrote {target}")
    if no_reload:
        return
    try:
        run_command(settings.ami, "dialplan reload")
        shown = run_command(settings.ami, "dialplan show cube-inbound")
    except AmiError as exc:
        raise click.ClickException(
            f"{exc} (the file is written; reload Asterisk's dialplan yourself)"
        ) from None
    if "cube-inbound" not in shown:
        raise click.ClickException(
            f"Asterisk did not load context cube-inbound: "
            f"is `#include {target}` in extensions.conf?"
        )
    click.echo("dialplan reloaded in Asterisk")
