"""The ``asterisk-cube`` command: provisioning, dialplan, sandbox PBX and ``serve``.

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import importlib

import click

from asterisk_cube import __version__
from asterisk_cube.cli.common import CliContext

# (module, attribute) of each command or group.
_COMMANDS = [
    ("asterisk_cube.cli.db", "db"),
    ("asterisk_cube.cli.config", "config"),
    ("asterisk_cube.cli.lines", "line"),
    ("asterisk_cube.cli.agents", "agent"),
    ("asterisk_cube.cli.campaigns", "campaign"),
    ("asterisk_cube.cli.contacts", "contacts"),
    ("asterisk_cube.cli.clients", "client"),
    ("asterisk_cube.cli.enquiry", "enquiry"),
    ("asterisk_cube.cli.dialplan", "dialplan"),
    ("asterisk_cube.cli.demo", "demo"),
    ("asterisk_cube.cli.sandbox", "sandbox"),
    ("asterisk_cube.cli.serve", "serve"),
    ("asterisk_cube.cli.report", "report"),
    ("asterisk_cube.cli.callbacks", "callbacks"),
    ("asterisk_cube.cli.missed", "missed"),
    ("asterisk_cube.cli.doctor", "doctor"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ASTERISK_CUBE_CONFIG",
    help="Settings file (default /etc/asterisk-cube/cube.toml if present).",
)
@click.version_option(__version__, prog_name="asterisk-cube")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """asterisk-cube: a contact center for an existing Asterisk."""
    ctx.obj = CliContext(config_path=config_path)


for module_name, attr in _COMMANDS:
    cli.add_command(getattr(importlib.import_module(module_name), attr))


def main() -> None:
    cli(prog_name="asterisk-cube")
