"""The sandbox's pure parts: mirror discovery, ports, env and rendered Asterisk config."""

from pathlib import Path

import pytest

from asterisk_cube.config import load_settings
from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_config import empty_dialplan, render_config
from asterisk_cube.sandbox_host import SandboxError, debian_mirror

DIRS = {
    "astmoddir": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "astdatadir": "/usr/share/asterisk",
    "astagidir": "/usr/share/asterisk/agi-bin",
    "astsbindir": "/usr/sbin",
}


def test_mirror_comes_from_deb822_sources_not_the_security_archive(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example.org/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (d / "other.sources").write_text("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\n")
    assert debian_mirror(d, tmp_path / "missing.list") == "http://mirror.example.org/debian"


def test_mirror_from_one_line_sources_list(tmp_path):
    lst = tmp_path / "sources.list"
    lst.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/x.gpg] http://ftp.example.net/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path / "nothing", lst) == "http://ftp.example.net/debian"


def test_no_debian_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="no Debian mirror"):
        debian_mirror(tmp_path, tmp_path / "sources.list")


def test_ports_follow_the_shared_conventions():
    inst = SandboxInstance("demo", 15000, Path("/nonexistent"))
    assert (inst.ami_port, inst.sip_port, inst.web_port, inst.http_port, inst.agi_port) == (
        15038,
        15060,
        15080,
        15088,
        15573,
    )
    assert inst.rtp_range == (16000, 16999)
    assert list(inst.carrier_ports) == list(range(15100, 15120))
    assert list(inst.customer_ports) == list(range(15150, 15160))
    assert inst.agent_port(1) == 15201 and inst.agent_port(40) == 15240
    with pytest.raises(ValueError):
        inst.agent_port(41)


@pytest.mark.parametrize(
    ("name", "base"), [("Bad Name", 15000), ("../x", 15000), ("ok", 80), ("ok", 64000)]
)
def test_bad_names_and_ports_are_refused(name, base):
    with pytest.raises(SandboxError):
        SandboxInstance(name, base, Path("/nonexistent"))


def test_env_points_the_settings_at_the_instance():
    inst = SandboxInstance("dev", 35000, Path("/srv/sbx"))
    settings = load_settings(env=inst.env())
    assert settings.ari.url == "http://127.0.0.1:35088"
    assert settings.ami.port == 35038 and settings.ami.secret == "asterisk-cube"
    assert settings.agi.port == 35573 and settings.web.port == 35080
    assert settings.dialplan.path == "/srv/sbx/srv/cube/dev/etc/asterisk-cube.conf"


def test_rendered_config_uses_the_instance_dirs_and_ports():
    inst = SandboxInstance("dev", 35000, Path("/srv/sbx"))
    files = render_config(inst, DIRS)
    assert "astetcdir => /srv/cube/dev/etc" in files["asterisk.conf"]
    assert "astrundir => /srv/cube/dev/run" in files["asterisk.conf"]
    assert "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules" in files["asterisk.conf"]
    assert "bindport = 35088" in files["http.conf"] and "bindaddr = 127.0.0.1" in files["http.conf"]
    assert "port = 35038" in files["manager.conf"]
    assert "rtpstart = 36000" in files["rtp.conf"] and "rtpend = 36999" in files["rtp.conf"]
    assert "password = asterisk-cube" in files["ari.conf"]
    assert '#include "/srv/cube/dev/etc/asterisk-cube.conf"' in files["extensions.conf"]
    pjsip = files["pjsip.conf"]
    assert "bind = 127.0.0.1:35060" in pjsip
    assert "contact = sip:agent07@127.0.0.1:35207" in pjsip
    assert "match = 127.0.0.1:35207/32" in pjsip
    assert "match = 127.0.0.1:35100/32" in pjsip and "match = 127.0.0.1:35119/32" in pjsip
    assert "contact = sip:127.0.0.1:35150" in pjsip
    assert pjsip.count("type = endpoint") == 1  # the template; endpoints inherit it
    assert pjsip.count("(cube-phone)") == 41  # the carrier and agent01..agent40
    assert "send_connected_line = no" in pjsip and "direct_media = no" in pjsip
    for port in (5060, 5038, 8088):
        assert f":{port}\n" not in pjsip and f"= {port}\n" not in "".join(files.values())


def test_empty_dialplan_has_the_three_contexts():
    text = empty_dialplan()
    for ctx in ("[cube-inbound]", "[cube-agents]", "[cube-fallback]"):
        assert ctx in text
