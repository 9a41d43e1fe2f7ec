"""``asterisk-cube webrtc``: the browser phones' PJSIP config and DTLS certificate."""

import click

from asterisk_cube import webrtc as wr
from asterisk_cube.cli.common import friendly_errors, pass_ctx


@click.group()
def webrtc() -> None:
    """Browser phones: PJSIP over WebSocket with DTLS-SRTP (docs/webrtc.md)."""


def _render(ctx) -> str:
    from asterisk_cube.web.auth import load_secret_key

    key = load_secret_key(ctx.settings)
    with ctx.transaction() as s:
        return wr.render(s, ctx.settings, key)


@webrtc.command()
@pass_ctx
@friendly_errors
def show(ctx):
    """Print the PJSIP config of the browser phones (it holds their SIP passwords)."""
    try:
        click.echo(_render(ctx), nl=False)
    except wr.WebrtcError as exc:
        raise click.ClickException(str(exc)) from None


@webrtc.command()
@click.option("--no-reload", is_flag=True, help="Only write the files; don't reload PJSIP.")
@pass_ctx
@friendly_errors
def install(ctx, no_reload):
    """Make the DTLS certificate (once), write the PJSIP file and reload PJSIP over AMI.

    Once installed, a running serve rewrites it as agents are added or removed; run it
    again after changing [webrtc] or web.secret_key."""
    try:
        click.echo(wr.install(_render(ctx), ctx.settings, reload=not no_reload))
    except wr.WebrtcError as exc:
        raise click.ClickException(str(exc)) from None
