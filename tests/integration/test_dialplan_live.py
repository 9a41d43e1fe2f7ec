"""The generated dialplan, loaded into the real sandbox Asterisk through the CLI."""

import re

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cube(sandbox, tmp_path, monkeypatch):
    """Run the CLI against the sandbox instance with a fresh SQLite database."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    return invoke


def test_install_loads_every_did_into_asterisk(cube, sandbox):
    cube("demo", "load")
    cube("line", "add", "+4722000000", "--name", "Plus")
    for n in range(10):
        cube("line", "add", f"47230000{n:02d}", "--priority", str(n))
    out = cube("dialplan", "install").output
    assert "dialplan reloaded in Asterisk" in out

    shown = sandbox.rx("dialplan show cube-inbound")
    loaded = set(re.findall(r"'([+0-9]+)' =>", shown))
    expected = {"4721000001", "4721000002", "4721000003", "4721000004", "+4722000000"}
    expected |= {f"47230000{n:02d}" for n in range(10)}
    # the demo's outbound campaign's caller ID, for its customers' callbacks (F-I3)
    expected |= {"4721000009", "+4721000009", "21000009"}
    assert loaded == expected
    assert "Stasis(asterisk-cube,callback," in shown
    assert "Stasis(asterisk-cube,inbound," in shown
    assert "AGI(agi://127.0.0.1:" in shown
    for context in ("cube-agents", "cube-fallback"):
        assert f"[ Context '{context}'" in sandbox.rx(f"dialplan show {context}")


def test_removed_line_disappears_after_reinstall(cube, sandbox):
    cube("line", "add", "4729990001")
    cube("line", "add", "4729990002")
    cube("dialplan", "install")
    cube("line", "remove", "4729990001")
    cube("dialplan", "install")
    shown = sandbox.rx("dialplan show cube-inbound")
    assert "'4729990002' =>" in shown
    assert "'4729990001' =>" not in shown


def test_install_reports_unreachable_ami(cube, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_AMI_PORT", "1")
    result = cube("dialplan", "install", ok=False)
    assert result.exit_code == 1
    assert "cannot reach AMI at 127.0.0.1:1" in result.output
    assert "the file is written" in result.output


def test_install_reports_wrong_ami_secret(cube, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_AMI_SECRET", "wrong")
    result = cube("dialplan", "install", ok=False)
    assert "refused" in result.output
