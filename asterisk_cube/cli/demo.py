"""``asterisk-cube demo``: demo data, and the one-command demo on the sandbox PBX."""

import os

import click

from asterisk_cube.cli.common import db_command
from asterisk_cube.services.demo_data import load_demo


@click.group()
def demo() -> None:
    """Demo data and the sandbox demo."""


@db_command(demo, "load")
@click.option("--agents", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option(
    "--password", default="demo-password", show_default=True, help="Password of every demo user."
)
@click.option(
    "--force", is_flag=True, help="Load even into a database that already has users or lines."
)
@click.option(
    "--history-days",
    type=click.IntRange(0, 366),
    default=0,
    show_default=True,
    help="Also write this many days of generated history (calls, dials, enquiries, agent "
    "states) so every report has content; only into a database without calls.",
)
def load(s, agents, password, force, history_days):
    """Provision demo data (skipped if it is already there).

    Refused on a database that already has users or lines (e.g. production) unless --force:
    the demo adds an admin and a supervisor with a known password."""
    text = load_demo(s, agents=agents, password=password, force=force)
    if history_days:
        from asterisk_cube.demo.history import generate_history

        text += "\n" + generate_history(s, history_days)
    return text


@demo.command("run")
@click.option("--name", default="demo", show_default=True, help="Sandbox instance name.")
@click.option("--base-port", type=int, default=15000, show_default=True, help="Sandbox port base.")
@click.option("--agents", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option("--keep-pbx", is_flag=True, help="Leave the sandbox Asterisk running on exit.")
@click.pass_context
def run(click_ctx, name, base_port, agents, keep_pbx):
    """Sandbox PBX + demo data + serve: everything on embedded defaults.

    Builds the sandbox Asterisk on first use (a few minutes), starts it on its own
    ports, creates a SQLite database under the data directory's demo/ folder, loads
    demo data, installs the dialplan and runs `serve` until Ctrl-C.
    """
    from asterisk_cube import dialplan as dp
    from asterisk_cube.cli.serve import serve
    from asterisk_cube.config import default_data_dir, load_settings
    from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
    from asterisk_cube.sandbox import SandboxError, SandboxInstance

    ctx = click_ctx.obj
    try:
        instance = SandboxInstance(name, base_port)
        click.echo(f"starting sandbox Asterisk {name!r} (first use builds it: a few minutes)...")
        instance.up(progress=lambda msg: click.echo(f"  {msg}"))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    env = dict(os.environ)
    env.pop("ASTERISK_CUBE_CONFIG", None)
    env.update(instance.env())
    env.setdefault("ASTERISK_CUBE_DATA_DIR", str(default_data_dir() / name))
    ctx._settings = settings = load_settings(env=env)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        click.echo(load_demo(s, agents=agents))
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    try:
        click.echo(dp.install(text, settings))
    except dp.DialplanInstallError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database: {settings.database_url}")
    click.echo(
        f"SIP: the carrier trunk takes calls from 127.0.0.1 ports {instance.carrier_ports.start}-"
        f"{instance.carrier_ports.stop - 1} to 127.0.0.1:{instance.sip_port}; "
        f"agent phones are PJSIP/agent01.. on ports {instance.agent_port(1)}.."
    )
    try:
        click_ctx.invoke(serve)
    finally:
        if not keep_pbx:
            instance.down()
            click.echo(f"sandbox {name!r} stopped")
