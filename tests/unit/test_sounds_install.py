"""`asterisk-cube sounds install` (issue #15): the README's `cp -r sounds/*` failed when
the target folder did not exist and needed a checkout."""

from click.testing import CliRunner

from asterisk_cube.cli import cli
from asterisk_cube.core import doctor as d
from asterisk_cube.sounds import packaged_sounds_dir, prompt_names


def test_install_creates_the_folder_and_doctor_finds_every_prompt(tmp_path):
    target = tmp_path / "usr/share/asterisk/sounds/asterisk-cube"  # no parent exists
    result = CliRunner().invoke(cli, ["sounds", "install", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    shipped = prompt_names(packaged_sounds_dir())
    assert {"formal/closed", "informal/goodbye", "nb/formal/next-open"} <= shipped
    assert prompt_names(target) == shipped
    assert d.sounds_finding(shipped, prompt_names(target), str(target)).ok
    assert oct((target / "formal/closed.gsm").stat().st_mode & 0o777) == "0o644"
    # again: idempotent
    again = CliRunner().invoke(cli, ["sounds", "install", "--dir", str(target)])
    assert again.exit_code == 0 and f"in {target}" in again.output


def test_unwritable_target_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["sounds", "install", "--dir", str(blocker / "x")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot write ")
    assert len(result.output.strip().splitlines()) == 1
