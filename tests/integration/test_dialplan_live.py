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


def a_peer_node(cube, monkeypatch, tmp_path, name="peer", address="127.0.0.1:59960"):
    """Another node records its SIP address (its own `dialplan install --no-reload`)."""
    with monkeypatch.context() as m:
        m.setenv("ASTERISK_CUBE_NODE_NAME", name)
        m.setenv("ASTERISK_CUBE_NODE_SIP_ADDRESS", address)
        m.setenv("ASTERISK_CUBE_NODE_TRUNK_PATH", str(tmp_path / "peer-trunk.conf"))
        cube("dialplan", "install", "--no-reload", "--path", str(tmp_path / "peer.conf"))


def test_install_loads_the_trunk_to_the_other_nodes(cube, sandbox, monkeypatch, tmp_path):
    """Issue #14: one PJSIP endpoint per other node, identified by its IP and port."""
    a_peer_node(cube, monkeypatch, tmp_path)
    monkeypatch.setenv("ASTERISK_CUBE_NODE_NAME", "here")
    monkeypatch.setenv("ASTERISK_CUBE_NODE_SIP_ADDRESS", sandbox.sip_address)
    try:
        out = cube("dialplan", "install").output
        assert str(sandbox.trunk_path) in out
        shown = sandbox.rx("pjsip show endpoint cube-node-peer")
        assert "Match: 127.0.0.1:59960/32" in shown
        assert "cube-from-nodes" in sandbox.rx("pjsip show endpoint cube-node-peer")
    finally:
        sandbox.trunk_path.write_text("")
        sandbox.rx("module reload res_pjsip.so")


def test_install_says_when_pjsip_does_not_include_the_trunk(cube, sandbox, monkeypatch, tmp_path):
    a_peer_node(cube, monkeypatch, tmp_path)
    monkeypatch.setenv("ASTERISK_CUBE_NODE_NAME", "here")
    monkeypatch.setenv("ASTERISK_CUBE_NODE_SIP_ADDRESS", sandbox.sip_address)
    monkeypatch.setenv("ASTERISK_CUBE_NODE_TRUNK_PATH", str(tmp_path / "not-included.conf"))
    result = cube("dialplan", "install", ok=False)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: Asterisk did not load the trunk endpoint cube-node-peer: "
        f"is `#include {tmp_path / 'not-included.conf'}` in pjsip.conf?"
    )
