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
    ("asterisk_cube.cli.webrtc", "webrtc"),
    ("asterisk_cube.cli.demo", "demo"),
    ("asterisk_cube.cli.sandbox", "sandbox"),
    ("asterisk_cube.cli.serve", "serve"),
    ("asterisk_cube.cli.report", "report"),
    ("asterisk_cube.cli.callbacks", "callbacks"),
    ("asterisk_cube.cli.missed", "missed"),
    ("asterisk_cube.cli.doctor", "doctor"),
    ("asterisk_cube.cli.sounds", "sounds"),
    ("asterisk_cube.cli.recording", "recording"),
    ("asterisk_cube.cli.nodes", "node"),
]


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it): the
    development-only sandbox builder (``asterisk_cube.sandbox``) is never imported by
    ``serve`` or any production command, and every command starts faster."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(attr for _m, attr in _COMMANDS)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        for module_name, attr in _COMMANDS:
            if attr == cmd_name:
                command = getattr(importlib.import_module(module_name), attr)
                self.add_command(command, cmd_name)
                return command
        return None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def main() -> None:
    cli(prog_name="asterisk-cube")
