"""The development-only sandbox builder is not imported by serve or production commands
(issue #15): the CLI imports a command's module only when that command runs."""

import subprocess
import sys

from click.testing import CliRunner

from asterisk_cube.cli import _COMMANDS, cli

PROBE = """
import sys
from click.testing import CliRunner
from asterisk_cube.cli import cli
result = CliRunner().invoke(cli, [{args}])
assert result.exit_code == 0, result.output
print("asterisk_cube.sandbox" in sys.modules)
"""


def imports_sandbox(*args: str) -> bool:
    code = PROBE.format(args=", ".join(repr(a) for a in args))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_serve_and_doctor_do_not_import_the_sandbox():
    assert not imports_sandbox("serve", "--help")
    assert not imports_sandbox("doctor", "--help")
    assert imports_sandbox("sandbox", "--help")  # the one that needs it still has it


def test_every_command_is_listed_and_runs_its_help():
    result = CliRunner().invoke(cli, ["--help"])
    for _module, name in _COMMANDS:
        assert f"  {name} " in result.output
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0
