"""``asterisk-cube serve``: run the ARI app, the FastAGI server and the web app in one process."""

from __future__ import annotations

import click

from asterisk_cube import logs


@click.command()
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="ASTERISK_CUBE_LOG_LEVEL",
    help="Least severe log level written (env ASTERISK_CUBE_LOG_LEVEL).",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="kv",
    show_default=True,
    envvar="ASTERISK_CUBE_LOG_FORMAT",
    help="Log lines as key=value or JSON, one event per line on stderr.",
)
@click.pass_context
def serve(ctx: click.Context, log_level: str, log_format: str) -> None:
    """Run asterisk-cube: Stasis app over ARI, FastAGI server and web app.

    Connects to Asterisk's ARI (retrying until it is reachable), listens for FastAGI and
    HTTP on the configured addresses and stops cleanly on SIGTERM or Ctrl-C.
    """
    import asyncio

    from asterisk_cube.runtime import RuntimeState
    from asterisk_cube.wiring import SchemaOutOfDate, build_runtime

    if ctx.obj is not None and hasattr(ctx.obj, "settings"):
        settings = ctx.obj.settings  # the main group's CliContext (honours --config)
    else:
        from asterisk_cube.config import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None

    logs.configure(log_level, log_format)

    from asterisk_cube import systemd

    def announce(state: RuntimeState) -> None:
        systemd.notify("READY=1")  # Type=notify: every part listens (no-op outside systemd)
        click.echo(f"asterisk-cube serving: web {state.web_url}  (health: {state.web_url}health)")
        click.echo(f"  FastAGI {state.agi_url}   ARI {settings.ari.url} app {settings.ari.app}")
        click.echo("  stop with Ctrl-C or SIGTERM", nl=True)

    # systemd's watchdog (WatchdogSec): pinged from the event loop, so a blocked loop
    # gets the service restarted
    interval = systemd.watchdog_interval()
    components = {"systemd-watchdog": lambda state: systemd.watchdog(interval)} if interval else {}
    try:
        runtime = build_runtime(settings, on_ready=announce, components=components)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    code = asyncio.run(runtime.run())
    systemd.notify("STOPPING=1")
    ctx.exit(code)
