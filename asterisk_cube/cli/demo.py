"""``asterisk-cube demo``: demo data, and the one-command demo on the sandbox PBX."""

import contextlib
import os
import signal

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


def _demo_env(instance, name: str) -> dict[str, str]:
    """The environment that points asterisk-cube at the demo: the sandbox's (Asterisk,
    sounds), the demo's data directory and its mail sink (``demo env`` prints it)."""
    from asterisk_cube.config import default_data_dir
    from asterisk_cube.demo.testcall import settings_env
    from asterisk_cube.services.demo_data import TEST_DID

    env = dict(instance.env())
    env.update(settings_env(instance, TEST_DID))  # the desk's Test call button
    env["ASTERISK_CUBE_DATA_DIR"] = os.environ.get("ASTERISK_CUBE_DATA_DIR") or str(
        default_data_dir() / name
    )
    env["ASTERISK_CUBE_SMTP_HOST"] = "127.0.0.1"
    env["ASTERISK_CUBE_SMTP_PORT"] = str(instance.base_port + MAIL_SINK_OFFSET)
    return env


MAIL_SINK_OFFSET = 525  # the demo's mail sink: base+525 (docs/sandbox.md)
NAME_OPTION = click.option(
    "--name", default="demo", show_default=True, help="Sandbox instance name."
)
BASE_PORT_OPTION = click.option(
    "--base-port", type=int, default=15000, show_default=True, help="Sandbox port base."
)


def _install_browser_phones(settings, sessions) -> None:
    """Every demo user can pick the phone in the browser on the desk (docs/webrtc.md)."""
    from asterisk_cube import webrtc as wr
    from asterisk_cube.db.session import transaction
    from asterisk_cube.web.auth import load_secret_key

    with transaction(sessions) as s:
        text = wr.render(s, settings, load_secret_key(settings))
    try:
        click.echo(wr.install(text, settings))
    except wr.WebrtcError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("browser phone: on the desk, pick 'Phone in the browser' (Phone card)")


@demo.command("run")
@NAME_OPTION
@BASE_PORT_OPTION
@click.option("--agents", type=click.IntRange(1, 20), default=8, show_default=True)
@click.option("--keep-pbx", is_flag=True, help="Leave the sandbox Asterisk running on exit.")
@click.option(
    "--traffic/--no-traffic",
    default=True,
    show_default=True,
    help="Run the traffic simulator beside it (callers, agents but agent01, the campaign).",
)
@click.option(
    "--history-days",
    type=click.IntRange(0, 366),
    default=30,
    show_default=True,
    help="Days of generated history written into a new demo database.",
)
@click.option("--calls-per-minute", type=click.FloatRange(0.1, 30), default=3.0, show_default=True)
@click.option(
    "--fresh",
    is_flag=True,
    help="Start from an empty demo database: the old one is moved aside (renamed with a "
    "timestamp), not deleted.",
)
@click.pass_context
def run(
    click_ctx, name, base_port, agents, keep_pbx, traffic, history_days, calls_per_minute, fresh
):
    """Sandbox PBX + demo data + serve (+ traffic): everything on embedded defaults.

    Builds the sandbox Asterisk on first use (a few minutes), starts it on its own
    ports, creates a SQLite database under the data directory's demo/ folder, loads
    demo data with a month of history, installs the dialplan, starts a mail sink for the
    call notes and the traffic simulator (``demo traffic``), and runs `serve` until Ctrl-C,
    which stops all of it.
    """
    import subprocess
    import sys
    from pathlib import Path

    from asterisk_cube import dialplan as dp
    from asterisk_cube.cli.serve import serve
    from asterisk_cube.config import load_settings
    from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
    from asterisk_cube.demo.mailsink import MailSink
    from asterisk_cube.sandbox import SandboxInstance
    from asterisk_cube.sandbox_host import SandboxError

    ctx = click_ctx.obj
    try:
        instance = SandboxInstance(name, base_port)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    env = dict(os.environ)
    env.pop("ASTERISK_CUBE_CONFIG", None)
    env.update(_demo_env(instance, name))
    ctx._settings = settings = load_settings(env=env)
    if fresh:  # before the sandbox starts: a refusal costs nothing
        click.echo(_move_aside(settings.database_url))
    try:
        click.echo(f"starting sandbox Asterisk {name!r} (first use builds it: a few minutes)...")
        instance.up(progress=lambda msg: click.echo(f"  {msg}"))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        loaded = load_demo(s, agents=agents)
        click.echo(loaded)
    if history_days and "already" not in loaded:
        from asterisk_cube.demo.history import generate_history

        with transaction(sessions) as s:
            click.echo(generate_history(s, history_days))
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    try:
        click.echo(dp.install(text, settings))
    except dp.DialplanInstallError as exc:
        raise click.ClickException(str(exc)) from None
    _install_browser_phones(settings, sessions)
    mail_dir = Path(settings.data_dir) / "mail"
    try:
        sink = MailSink(mail_dir, settings.smtp.port).start()
    except OSError as exc:
        raise click.ClickException(
            f"mail sink on 127.0.0.1:{settings.smtp.port}: {exc.strerror or exc}"
        ) from None
    click.echo(f"database: {settings.database_url}")
    click.echo(f"mail (call notes) lands in {mail_dir} (SMTP 127.0.0.1:{settings.smtp.port})")
    click.echo(
        f"SIP: the carrier trunk takes calls from 127.0.0.1 ports {instance.carrier_ports.start}-"
        f"{instance.carrier_ports.stop - 1} to 127.0.0.1:{instance.sip_port}; "
        f"agent phones are PJSIP/agent01.. on ports {instance.agent_port(1)}.."
    )
    click.echo(
        f'another shell: eval "$(asterisk-cube demo env --name {name} --base-port {base_port})" '
        "then e.g. asterisk-cube doctor, or asterisk-cube demo call (a test call to take)"
    )
    simulator = None
    if traffic:
        command = [sys.executable, "-c", "from asterisk_cube.cli import main; main()"]
        command += ["demo", "traffic", "--name", name, "--base-port", str(base_port)]
        command += ["--calls-per-minute", str(calls_per_minute)]
        simulator = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        click.echo(f"traffic simulator started (pid {simulator.pid}; agent01 is yours)")
    try:
        click_ctx.invoke(serve)
    finally:
        if simulator is not None:
            _stop_child(simulator)
            click.echo("traffic simulator stopped")
        sink.stop()
        if not keep_pbx:
            instance.down()
            click.echo(f"sandbox {name!r} stopped")


def _move_aside(url: str) -> str:
    """``demo run --fresh``: rename the demo's SQLite file (and its ``-wal``/``-shm``) to
    ``<name>.<UTC timestamp>`` so the run starts from an empty database; one line saying
    what happened."""
    import datetime as dt

    from asterisk_cube.db.session import sqlite_path
    from asterisk_cube.redact import redact_url

    path = sqlite_path(url)
    if path is None:
        raise click.ClickException(
            f"--fresh: the demo database {redact_url(url)} is not a SQLite file; "
            "empty it yourself or unset ASTERISK_CUBE_DATABASE_URL"
        )
    if not path.exists():
        return f"fresh demo database: there is none at {path} yet"
    running = _running_serves(path)
    if running:  # moving its database away under it would leave it writing a ghost file
        node, pid, host = running[0]
        raise click.ClickException(
            f"--fresh: a demo serve is running on {path} (pid {pid} on {host}, node "
            f"{node!r}): stop it first (Ctrl-C in its shell, or kill {pid})"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.{stamp}")
    if aside.exists():
        raise click.ClickException(f"--fresh: {aside} exists already: try again in a second")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return f"moved the old demo database aside to {aside}: starting from an empty one"


def _running_serves(path) -> list[tuple[str, int, str]]:
    """The serves holding a live node lease on the demo's SQLite file, read through a
    read-only connection (the file is moved aside as it is); none when the database
    predates node leases."""
    import datetime as dt
    import sqlite3

    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from asterisk_cube.db.session import make_sessionmaker, transaction
    from asterisk_cube.services.nodes import running_serves

    # SQLite may make a -wal and -shm file to read a WAL database: leave none behind
    ours = [p for p in (path.with_name(path.name + x) for x in ("-wal", "-shm")) if not p.exists()]
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    try:
        with transaction(make_sessionmaker(engine)) as s:
            return running_serves(s, dt.datetime.now(dt.UTC))
    except OperationalError:  # no nodes table yet
        return []
    finally:
        engine.dispose()
        for made in ours:
            made.unlink(missing_ok=True)


def _stop_child(proc, timeout: float = 15.0) -> None:
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@demo.command("env")
@NAME_OPTION
@BASE_PORT_OPTION
def env_command(name, base_port):
    """Print export lines that point asterisk-cube at the running demo (its Asterisk, the
    sounds inside the sandbox, its database and mail sink): eval "$(asterisk-cube demo env)"."""
    import shlex

    from asterisk_cube.sandbox import SandboxError, SandboxInstance

    try:
        instance = SandboxInstance(name, base_port)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    for key, value in _demo_env(instance, name).items():
        click.echo(f"export {key}={shlex.quote(value)}")


@demo.command("traffic")
@NAME_OPTION
@BASE_PORT_OPTION
@click.option("--calls-per-minute", type=click.FloatRange(0.1, 30), default=3.0, show_default=True)
@click.option(
    "--agents",
    "agent_names",
    multiple=True,
    help="Demo agents to simulate (repeatable; default every agentNN but agent01).",
)
@click.option("--password", default="demo-password", show_default=True)
@click.option("--campaign/--no-campaign", default=True, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed (default: a new one).")
@click.option("--duration", type=click.FloatRange(1), default=None, help="Stop after N seconds.")
@click.pass_context
def traffic(
    click_ctx, name, base_port, calls_per_minute, agent_names, password, campaign, seed, duration
):
    """Simulated callers, agents and campaign customers against a running demo (see
    `demo run --traffic`); Ctrl-C or SIGTERM stops everything it started."""
    import asyncio
    import random
    from pathlib import Path

    from sqlalchemy import select

    from asterisk_cube import logs
    from asterisk_cube.config import load_settings
    from asterisk_cube.db import models as m
    from asterisk_cube.db.session import make_engine, make_sessionmaker
    from asterisk_cube.demo.traffic import Plan, Traffic, wait_ready
    from asterisk_cube.sandbox import SandboxError, SandboxInstance

    try:
        instance = SandboxInstance(name, base_port)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    settings = load_settings(env={**os.environ, **_demo_env(instance, name)})
    logs.configure("INFO", "kv")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    if not agent_names:
        with sessions() as s:
            agent_names = [
                u
                for u in s.scalars(
                    select(m.Agent.username)
                    .where(m.Agent.role == m.Role.AGENT, m.Agent.username.like("agent%"))
                    .order_by(m.Agent.username)
                )
                if u != "agent01"
            ]
    web_url = f"http://{settings.web.host}:{settings.web.port}"
    sim = Traffic(
        web_url=web_url,
        sip_port=instance.sip_port,
        base_port=base_port,
        sessions=sessions,
        agents=list(agent_names),
        password=password,
        workdir=Path(settings.data_dir) / "traffic",
        plan=Plan(random.Random(seed), calls_per_minute=calls_per_minute),
        campaign=campaign,
        ari=(settings.ari.url, settings.ari.username, settings.ari.password),
    )

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        stopping: list[bool] = []

        def stop() -> None:  # once: a second signal (Ctrl-C, then demo run's SIGTERM)
            if not stopping:  # must not cut short the stopping (calls, SIPp) itself
                stopping.append(True)
                task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        await wait_ready(web_url)
        click.echo(
            f"traffic: {len(agent_names)} simulated agents ({', '.join(agent_names)}), "
            f"about {calls_per_minute:g} callers a minute, campaign {'on' if campaign else 'off'}"
        )
        await sim.run(duration)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(main())
    c = sim.counts
    click.echo(
        f"traffic stopped: {c.callers} callers ({c.impatient} impatient, {c.adblocked} ad-blocked),"
        f" {c.accepted} offers accepted, {c.talked} calls talked, {c.registered} enquiries, "
        f"{c.breaks} breaks"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@demo.command("call")
@NAME_OPTION
@BASE_PORT_OPTION
@click.option(
    "--line", "did", default=None, help="The line's number (default: the test-call line)."
)
@click.option(
    "--from", "caller_id", default="+4791234567", show_default=True, help="Caller's number."
)
@click.option(
    "--hold",
    type=click.IntRange(5, 3600),
    default=300,
    show_default=True,
    help="Seconds the caller stays on the line at most (waiting and talking).",
)
def call(name, base_port, did, caller_id, hold):
    """A test call to one of the demo's lines, for you to take at agent01's desk: a SIPp
    caller on the sandbox's carrier trunk that waits for you and stays until you hang up."""
    from asterisk_cube.core.numbers import InvalidNumber, check_typed
    from asterisk_cube.core.testcall import caller_channels
    from asterisk_cube.demo.testcall import DemoCallError, place, target_for
    from asterisk_cube.sandbox import SandboxError, SandboxInstance
    from asterisk_cube.services.demo_data import TEST_DID

    try:
        instance = SandboxInstance(name, base_port)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    if not instance.is_running():
        raise click.ClickException(
            f"the demo's sandbox {name!r} is not running: start ./scripts/demo"
        )
    try:
        check_typed(caller_id)
    except InvalidNumber as exc:
        raise click.ClickException(f"--from: {exc}") from None
    did = did or TEST_DID
    if not did.isdigit():
        raise click.ClickException(
            f"--line {did!r}: give the line's number (digits), e.g. {TEST_DID}"
        )
    try:
        proc = place(target_for(instance, did, caller_id), hold_s=hold)
    except DemoCallError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"calling line {did} from {caller_id}: take it at the desk (agent01); Ctrl-C hangs up"
    )
    assert proc.proc is not None  # started above
    code: int | None
    # a closed terminal (SIGHUP) or a `kill` (SIGTERM) hangs up like Ctrl-C: killed
    # without its BYE, the caller would stay in the queue in Asterisk
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        code = proc.proc.wait()
    except KeyboardInterrupt:
        for channel in caller_channels(instance.rx("core show channels concise"), did, caller_id):
            instance.rx(f"channel request hangup {channel}")  # Asterisk sends the BYE
        code = proc.stop()
    click.echo("test call ended" + ("" if code == 0 else f" (sipp exit {code})"))
