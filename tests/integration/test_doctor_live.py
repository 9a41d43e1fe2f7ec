"""``asterisk-cube doctor`` against the sandbox Asterisk, healthy and with each fault
injected (issue #15): a wrong ARI password, the dialplan not included, the sounds
missing, an AMI user without originate permission. Asserts from the outside too: the
sandbox's own CLI says what doctor claims."""

import json

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli

pytestmark = pytest.mark.integration

LIMITED = "cube-limited"


@pytest.fixture
def cube(sandbox, tmp_path, monkeypatch):
    """The CLI against the sandbox with a fresh database, one line, the dialplan and the
    browser phones (the sandbox sets [webrtc] ws_url) installed."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ASTERISK_CUBE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "cube.toml"))
    (tmp_path / "cube.toml").write_text("")
    runner = CliRunner()

    def invoke(*args, code=0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    invoke("db", "upgrade")
    invoke("line", "add", "4721555000", "--name", "Doctor")
    invoke("dialplan", "install")
    invoke("webrtc", "install")
    return invoke


@pytest.fixture
def sounds(sandbox):
    """The sandbox's prompts (``sandbox up`` copies them into the chroot)."""
    return str(sandbox.root / "usr/share/asterisk/sounds/asterisk-cube")


def doctor(cube, *args, code):
    out = cube("doctor", "--json", *args, code=code).output
    body = json.loads(out)
    return {f["check"]: f for f in body["findings"]}, body


def test_a_healthy_asterisk_passes_every_check(cube, sounds, sandbox):
    found, body = doctor(cube, "--sounds-dir", sounds, code=0)
    assert body["problems"] == 0, body
    for check in ("ari login", "ami login", "ami permissions", "asterisk modules"):
        assert found[check]["status"] == "ok"
    assert found["dialplan current"]["status"] == "ok"
    assert "'4721555000' =>" in sandbox.rx("dialplan show cube-inbound")
    assert found["browser phone transport"]["status"] == "ok"
    assert "cube-webrtc-ws" in sandbox.rx("pjsip show transports")
    # the human form: one line per check and a count (secrets: see the fault tests)
    text = cube("doctor", "--sounds-dir", sounds).output
    assert text.rstrip().endswith("ok, 0 problems")


def test_wrong_ari_password(cube, sounds, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_ARI_PASSWORD", "not-the-password")
    found, body = doctor(cube, "--sounds-dir", sounds, code=1)
    assert found["ari login"]["status"] == "problem"
    assert "refused user" in found["ari login"]["detail"]
    assert "ari.conf" in found["ari login"]["fix"]
    assert "not-the-password" not in json.dumps(body)
    assert found["ami login"]["status"] == "ok"  # only what is wrong is reported


def test_dialplan_not_included(cube, sounds, test_dialplan, sandbox):
    test_dialplan("[somewhere-else]\nexten => s,1,NoOp()\n")  # the include brings no cube-*
    assert "'4721555000' =>" not in sandbox.rx("dialplan show cube-inbound")  # outside view
    found, _ = doctor(cube, "--sounds-dir", sounds, code=1)
    assert found["dialplan included"]["status"] == "problem"
    assert "#include" in found["dialplan included"]["fix"]
    assert found["dialplan file"]["status"] == "problem"


def test_sounds_missing(cube, tmp_path):
    empty = tmp_path / "sounds-nowhere"
    found, _ = doctor(cube, "--sounds-dir", str(empty), code=1)
    assert found["sounds"]["status"] == "problem"
    assert (
        "formal/closed" in found["sounds"]["detail"]
        or "prompts missing" in (found["sounds"]["detail"])
    )
    assert "sounds install" in found["sounds"]["fix"]


@pytest.fixture
def limited_ami_user(sandbox):
    """A second AMI user without the originate write class; manager.conf restored after."""
    conf = sandbox.dialplan_path.parent / "manager.conf"
    before = conf.read_text()
    conf.write_text(
        before
        + f"""
[{LIMITED}]
secret = limited-secret
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = system,call,command,reporting
"""
    )
    sandbox.rx("manager reload")
    assert LIMITED in sandbox.rx("manager show users")
    yield LIMITED
    conf.write_text(before)
    sandbox.rx("manager reload")


def test_ami_user_without_originate(cube, sounds, limited_ami_user, monkeypatch, sandbox):
    monkeypatch.setenv("ASTERISK_CUBE_AMI_USERNAME", limited_ami_user)
    monkeypatch.setenv("ASTERISK_CUBE_AMI_SECRET", "limited-secret")
    # outside view: Asterisk itself says the user lacks originate
    assert (
        "originate"
        not in sandbox.rx(f"manager show user {limited_ami_user}")
        .split("write perm:")[-1]
        .split("\n")[0]
    )
    found, body = doctor(cube, "--sounds-dir", sounds, code=1)
    assert found["ami login"]["status"] == "ok"
    assert found["ami permissions"]["status"] == "problem"
    assert "Originate" in found["ami permissions"]["detail"]
    assert "limited-secret" not in json.dumps(body)


def test_campaign_caller_id_without_a_line(cube, sounds, sandbox):
    cube("campaign", "add", "Winter", "--mode", "power", "--caller-id", "4721555999")
    found, _ = doctor(cube, "--sounds-dir", sounds, code=1)
    assert found["campaign caller ids"]["status"] == "problem"
    assert "4721555999" in found["campaign caller ids"]["detail"]
    cube("line", "add", "4721555999", "--name", "Winter callbacks")
    cube("dialplan", "install")
    assert "'4721555999' =>" in sandbox.rx("dialplan show cube-inbound")  # outside view
    found, body = doctor(cube, "--sounds-dir", sounds, code=0)
    assert found["campaign caller ids"]["status"] == "ok", body


def test_a_node_trunk_out_of_date(cube, sounds, sandbox, monkeypatch, tmp_path):
    """Issue #14: with a [node] sip_address, doctor checks that the trunk to the other
    nodes is installed as the nodes table says (a node added since: install again)."""
    monkeypatch.setenv("ASTERISK_CUBE_NODE_NAME", "here")
    monkeypatch.setenv("ASTERISK_CUBE_NODE_SIP_ADDRESS", sandbox.sip_address)
    try:
        cube("dialplan", "install")
        found, body = doctor(cube, "--sounds-dir", sounds, code=0)
        assert found["node trunk"]["status"] == "ok", body
        with monkeypatch.context() as m:  # another node records its address
            m.setenv("ASTERISK_CUBE_NODE_NAME", "peer")
            m.setenv("ASTERISK_CUBE_NODE_SIP_ADDRESS", "127.0.0.1:59960")
            m.setenv("ASTERISK_CUBE_NODE_TRUNK_PATH", str(tmp_path / "peer-trunk.conf"))
            cube("dialplan", "install", "--no-reload", "--path", str(tmp_path / "peer.conf"))
        found, _ = doctor(cube, "--sounds-dir", sounds, code=1)
        assert found["node trunk"]["status"] == "problem"
        assert "differs from the configuration" in found["node trunk"]["detail"]
        cube("dialplan", "install")
        assert "cube-node-peer" in sandbox.rx("pjsip show endpoints")  # outside view
        found, body = doctor(cube, "--sounds-dir", sounds, code=0)
        assert found["node trunk"]["status"] == "ok", body
    finally:
        sandbox.trunk_path.write_text("")
        sandbox.rx("module reload res_pjsip.so")
