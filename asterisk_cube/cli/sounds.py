"""``asterisk-cube sounds``: the caller prompts the generated dialplan plays."""

import click


@click.group()
def sounds() -> None:
    """Caller prompts (answering service: closed, blocked, next opening...)."""


@sounds.command()
@click.option(
    "--dir",
    "target",
    default=None,
    help="Where Asterisk finds them (default /usr/share/asterisk/sounds/asterisk-cube).",
)
def install(target: str | None) -> None:
    """Copy the prompts shipped with the package where Asterisk finds them (the dialplan
    plays asterisk-cube/<tone>/...); creates the folder."""
    from asterisk_cube.sounds import DEFAULT_SOUNDS_DIR, SoundsError, install_sounds

    target = target or DEFAULT_SOUNDS_DIR
    try:
        count = install_sounds(target)
    except SoundsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"installed {count} prompts in {target}")
