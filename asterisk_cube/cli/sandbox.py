"""``asterisk-cube sandbox``: a real Asterisk for development, demo and tests (not for production).

On a real system the admin points asterisk-cube's settings at the existing Asterisk instead.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Callable
from typing import Any

import click

from asterisk_cube.sandbox import SandboxInstance, find_instance, list_instances
from asterisk_cube.sandbox_host import SandboxError, is_built, sandbox_root

DEFAULT_BASES = {"demo": 15000, "test": 25000}


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Sandbox failures become one-line errors with exit status 1, never tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SandboxError as exc:
            raise click.ClickException(str(exc)) from None
        except PermissionError as exc:
            raise click.ClickException(
                f"permission denied: {exc.filename or exc} (run as root)"
            ) from None
        except OSError as exc:
            raise click.ClickException(
                f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            ) from None

    return wrapper


def _instance(name: str, base_port: int | None) -> SandboxInstance:
    """The instance: explicit base port, else the one it was set up with, else the default."""
    if base_port is None:
        known = find_instance(name)
        base_port = known.base_port if known else DEFAULT_BASES.get(name, 15000)
    return SandboxInstance(name, base_port)


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


NAME = click.option(
    "--name", default="demo", show_default=True, help="Instance name (each has its own ports)."
)
BASE = click.option(
    "--base-port",
    type=click.IntRange(1024, 63535),
    default=None,
    help="Port base: SIP base+60, AMI base+38, ARI base+88 ... "
    "[default: as last used, else demo 15000, test 25000]",
)


@click.group()
def sandbox() -> None:
    """Sandbox PBX: a Debian sid Asterisk in a chroot, for development, demo and tests.

    Built once under $ASTERISK_CUBE_SANDBOX_ROOT (default /var/lib/asterisk-cube/sandbox/root);
    needs root. On a real system point asterisk-cube's settings at your own Asterisk instead.
    """


@sandbox.command()
@NAME
@BASE
@click.option(
    "--reset-dialplan",
    is_flag=True,
    help="Empty the generated dialplan and trunk files first (and forget the peers).",
)
@click.option("--timeout", type=float, default=30, show_default=True, help="Seconds to wait.")
@click.option(
    "--peer",
    metavar="NAME[:BASE]",
    default=None,
    help="Also start instance NAME (on base port BASE; default: as last used) and join the "
    "two by a PJSIP trunk, as two nodes' Asterisks (docs/sandbox.md).",
)
@_errors
def up(
    name: str, base_port: int | None, reset_dialplan: bool, timeout: float, peer: str | None
) -> None:
    """Start the instance (building the sandbox first if needed); wait for ARI."""
    inst = _instance(name, base_port)
    other = _peer(peer, inst) if peer else None
    _up(inst, reset_dialplan, timeout)
    if other is not None:
        _up(other, reset_dialplan, timeout)
        inst.join(other)
        click.echo(
            f"trunk: {inst.name} ({inst.sip_address}) <-> {other.name} ({other.sip_address}): "
            f"PJSIP endpoints cube-node-{other.name} and cube-node-{inst.name}"
        )


def _peer(spec: str, inst: SandboxInstance) -> SandboxInstance:
    """``--peer NAME[:BASE]``: the peer instance; one-line error for a bad one."""
    name, _, base = spec.partition(":")
    if base and not base.isdigit():
        raise SandboxError(f"--peer {spec!r}: the base port after ':' must be a number")
    if not base and find_instance(name) is None:
        raise SandboxError(f"--peer {spec!r}: instance {name!r} is new, give its base port")
    peer = _instance(name, int(base) if base else None)
    if peer.name == inst.name:
        raise SandboxError(f"--peer {spec!r}: an instance cannot be its own peer")
    if abs(peer.base_port - inst.base_port) < 4400:
        raise SandboxError(
            f"--peer {spec!r}: base ports {inst.base_port} and {peer.base_port} overlap "
            "(each instance spans base..base+4300)"
        )
    return peer


def _up(inst: SandboxInstance, reset_dialplan: bool, timeout: float) -> None:
    name = inst.name
    if not inst.is_running():
        click.echo(f"starting sandbox Asterisk {name!r} (the first start builds it)", err=True)
    seconds = inst.up(timeout=timeout, reset_dialplan=reset_dialplan, progress=_progress)
    state = "already running" if seconds == 0 else f"up in {seconds:.2f} s"
    click.echo(f"sandbox {name!r} {state}: ARI {inst.ari_url}, AMI 127.0.0.1:{inst.ami_port}")
    click.echo(f"  SIP 127.0.0.1:{inst.sip_port}, dialplan file {inst.dialplan_path}")
    click.echo(f'  point asterisk-cube at it: eval "$(asterisk-cube sandbox env --name {name})"')


@sandbox.command()
@NAME
@BASE
@click.option("--all", "all_", is_flag=True, help="Stop every instance of the sandbox.")
@_errors
def down(name: str, base_port: int | None, all_: bool) -> None:
    """Stop the instance; the built sandbox stays for the next `up`."""
    targets = list_instances() if all_ else [_instance(name, base_port)]
    for inst in targets:
        seconds = inst.down(progress=_progress)
        if seconds is None:
            click.echo(f"sandbox {inst.name!r} was not running")
        else:
            click.echo(f"sandbox {inst.name!r} stopped in {seconds:.2f} s")


@sandbox.command()
@click.option("--name", default=None, help="Only this instance [default: all set up].")
@BASE
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_errors
def status(name: str | None, base_port: int | None, as_json: bool) -> None:
    """Show whether the sandbox is built and which instances run where."""
    instances = [_instance(name, base_port)] if name else list_instances()
    rows = [i.status() for i in instances]
    if as_json:
        click.echo(json.dumps({"root": str(sandbox_root()), "instances": rows}, indent=2))
        return
    built = "built" if is_built() else "not built yet (the first `up` builds it)"
    click.echo(f"sandbox {sandbox_root()}: {built}")
    if not rows:
        click.echo("no instances set up (asterisk-cube sandbox up --name NAME --base-port N)")
    for row in rows:
        ports = row["ports"]
        assert isinstance(ports, dict)
        state = f"running (pid {row['pid']})" if row["running"] else "stopped"
        peers = row["peers"]
        assert isinstance(peers, dict)
        click.echo(
            f"{row['name']}: {state}; base {row['base_port']}: SIP {ports['sip_udp']}, "
            f"AMI {ports['ami']}, ARI {ports['http_ari']}, AGI {ports['agi']}, "
            f"web {ports['web']}, RTP {ports['rtp']}"
            + (f"; trunk to {', '.join(sorted(peers))}" if peers else "")
        )


@sandbox.command()
@NAME
@BASE
@click.argument("command", nargs=-1, required=True)
@_errors
def rx(name: str, base_port: int | None, command: tuple[str, ...]) -> None:
    """Run an Asterisk CLI command in the instance.

    Example: asterisk-cube sandbox rx --name demo pjsip show endpoints
    """
    click.echo(_instance(name, base_port).rx(" ".join(command)), nl=False)


@sandbox.command()
@NAME
@BASE
@_errors
def env(name: str, base_port: int | None) -> None:
    """Print shell `export` lines pointing asterisk-cube at the instance."""
    for key, value in _instance(name, base_port).env().items():
        click.echo(f"export {key}={shlex.quote(value)}")
