"""`sandbox up --peer`: two sandbox instances joined by the generated trunk (issue #14),
without starting Asterisk (the live check is tests/integration/test_crossnode_trunk.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asterisk_cube.cli.sandbox import sandbox
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_config import TRUNK_PJSIP, render_config
from asterisk_cube.sandbox_host import SandboxError


def instance(tmp_path, name, base):
    inst = SandboxInstance(name, base, tmp_path)
    (inst.host_dir / "etc").mkdir(parents=True)
    return inst


def test_joined_instances_each_get_an_endpoint_for_the_other(tmp_path):
    a, b = instance(tmp_path, "a", 34400), instance(tmp_path, "b", 56400)
    a.join(b)
    assert "[cube-node-b]" in a.trunk_path.read_text()
    assert "match = 127.0.0.1:56460" in a.trunk_path.read_text()
    assert "[cube-node-a]" in b.trunk_path.read_text()
    assert "contact = sip:127.0.0.1:34460" in b.trunk_path.read_text()
    assert a.peers() == {"b": 56400} and b.peers() == {"a": 34400}
    assert json.loads((a.host_dir / "instance.json").read_text())["peers"] == {"b": 56400}
    # pointing serve at a joined instance gives it the trunk settings
    assert a.env()["ASTERISK_CUBE_NODE_SIP_ADDRESS"] == "127.0.0.1:34460"
    assert a.env()["ASTERISK_CUBE_NODE_TRUNK_PATH"] == str(a.trunk_path)
    assert a.status()["peers"] == {"b": 56400}
    lone = instance(tmp_path, "c", 45000)
    assert "ASTERISK_CUBE_NODE_SIP_ADDRESS" not in lone.env()
    with pytest.raises(SandboxError, match="cannot be its own peer"):
        a.join(a)


def test_pjsip_conf_includes_the_trunk_file(tmp_path):
    dirs = dict.fromkeys(("astmoddir", "astdatadir", "astagidir", "astsbindir"), "/x")
    pjsip = render_config(SandboxInstance("a", 34400, tmp_path), dirs)["pjsip.conf"]
    assert f'#tryinclude "/srv/cube/a/etc/{TRUNK_PJSIP}"' in pjsip


@pytest.mark.parametrize(
    ("peer", "error"),
    [
        ("b:abc", "--peer 'b:abc': the base port after ':' must be a number"),
        ("a:56400", "--peer 'a:56400': an instance cannot be its own peer"),
        ("b:36000", "--peer 'b:36000': base ports 34400 and 36000 overlap"),
        ("newone", "--peer 'newone': instance 'newone' is new, give its base port"),
    ],
)
def test_a_bad_peer_is_one_line(tmp_path, monkeypatch, peer, error):
    monkeypatch.setenv("ASTERISK_CUBE_SANDBOX_ROOT", str(tmp_path))
    result = CliRunner().invoke(
        sandbox, ["up", "--name", "a", "--base-port", "34400", "--peer", peer]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {error}")
