"""The inter-node trunk's pure rules (issue #14, core/trunk.py): the SIP address setting, the
generated PJSIP config and dialplan, dial strings across the trunk, and which legs end together
on the agent's node."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from asterisk_cube.ari.outbound import AUTO_ANSWER
from asterisk_cube.config import ConfigError, load_settings
from asterisk_cube.core import trunk
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialplan import record_sip_address, render, render_trunk
from asterisk_cube.services import provisioning as p


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.2:5060", "10.0.0.2", 5060),
        ("pbx-b.example.com:5062", "pbx-b.example.com", 5062),
        ("[2001:db8::2]:5060", "2001:db8::2", 5060),
    ],
)
def test_a_sip_address_is_host_and_port(text, host, port):
    address = trunk.parse_sip_address(text)
    assert (address.host, address.port) == (host, port)
    assert str(address) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("10.0.0.2", "must be host:port, e.g. 10.0.0.2:5060"),
        ("10.0.0.2:0", "has a bad port '0' (1-65535)"),
        ("10.0.0.2:70000", "has a bad port '70000' (1-65535)"),
        ("10.0.0.2:sip", "has a bad port 'sip' (1-65535)"),
        ("2001:db8::2:5060", "must put an IPv6 address in brackets: [2001:db8::2]:5060"),
        ("[2001:db8::zz]:5060", "has a bad IPv6 address '2001:db8::zz'"),
        ("pbx b:5060", "has a bad host 'pbx b'"),
        (":5060", "must be host:port, e.g. 10.0.0.2:5060"),
    ],
)
def test_a_bad_sip_address_is_named_in_one_line(text, problem):
    assert trunk.sip_address_problem(text) == problem
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"ASTERISK_CUBE_NODE_SIP_ADDRESS": text})
    assert str(exc.value) == f"node.sip_address {problem}, got {text!r}"
    assert "\n" not in str(exc.value)


def test_the_trunk_has_one_endpoint_per_other_node_identified_by_ip_and_port():
    others = trunk.peers(
        [("a", "127.0.0.1:34460"), ("b", "127.0.0.1:56460"), ("c", None), ("d", "pbx-d:5060")],
        me="a",
    )
    assert [p.name for p in others] == ["b", "d"]  # not itself, not one without an address
    text = trunk.render_pjsip("a", others)
    assert text.count("type = endpoint") == 2
    assert text.count("type = identify") == 2
    assert "[cube-node-b]\ntype = endpoint\ncontext = cube-from-nodes\naors = cube-node-b\n" in text
    assert "contact = sip:127.0.0.1:56460\n" in text
    assert "match = 127.0.0.1:56460\n" in text  # an IP: its port too (two nodes on one host)
    assert "match = pbx-d\n" in text  # a host name: Asterisk resolves it
    assert "auth" not in text and "registration" not in text  # no registration
    assert "cube-node-a" not in text


def test_a_phone_of_this_node_is_dialled_directly_and_one_of_another_over_the_trunk():
    assert trunk.local_dial("PJSIP/agent05@cube-node-b", "b") == "PJSIP/agent05"
    assert trunk.local_dial("PJSIP/agent05@cube-node-b", "a") == "PJSIP/agent05@cube-node-b"
    assert trunk.local_dial("PJSIP/4799@carrier", "a") == "PJSIP/4799@carrier"
    assert trunk.trunk_peer("PJSIP/agent05@cube-node-b") == "b"
    assert trunk.trunk_peer("PJSIP/agent05") is None
    assert trunk.trunk_peer("PJSIP/4799@carrier") is None


def test_an_originate_over_the_trunk_carries_the_call_id():
    params = {"endpoint": "PJSIP/agent05@cube-node-b", "app": "cube", "appArgs": "agent,42"}
    out = trunk.outgoing(params, "a")
    assert out["endpoint"] == "PJSIP/agent05@cube-node-b"
    assert out["variables"] == {"PJSIP_HEADER(add,X-Cube-Call)": "42"}
    assert trunk.outgoing(params, "b") == {**params, "endpoint": "PJSIP/agent05"}
    dialer = {**params, "appArgs": "dial-agent,7", "variables": dict(AUTO_ANSWER)}
    assert trunk.outgoing(dialer, "a")["variables"] == {  # not the phone's headers
        "PJSIP_HEADER(add,X-Cube-Call)": "7",
        "PJSIP_HEADER(add,X-Cube-Auto-Answer)": "1",
    }
    local = {"endpoint": "PJSIP/agent01", "appArgs": "agent,42"}
    assert trunk.outgoing(local, "a") is local  # untouched


def test_only_this_nodes_agent_phones_are_reachable_from_the_trunk():
    endpoints = ["PJSIP/kari", "PJSIP/ola@cube-node-b", "PJSIP/per@cube-node-c", None, "SIP/x"]
    assert trunk.reachable_phones(endpoints, "b") == ["kari", "ola"]


def test_either_leg_leaving_ends_the_other_once():
    relays = trunk.Relays()
    relays.add("trunk-1", "phone-1")
    relays.add("trunk-2", "phone-2")
    assert len(relays) == 2
    assert relays.left("phone-1") == ["trunk-1"]
    assert relays.left("trunk-1") == []  # already ended with its partner
    assert relays.left("trunk-2") == ["phone-2"]
    assert relays.left("unknown") == []
    assert len(relays) == 0


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def node_settings(tmp_path, name, address):
    return load_settings(
        env={
            "ASTERISK_CUBE_DATA_DIR": str(tmp_path),
            "ASTERISK_CUBE_ARI_APP": "cube-test",
            "ASTERISK_CUBE_NODE_NAME": name,
            "ASTERISK_CUBE_NODE_SIP_ADDRESS": address,
        }
    )


def test_dialplan_install_renders_the_trunk_from_the_nodes_table(sessions, tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 12, 6, 9, tzinfo=dt.UTC)
    a = node_settings(tmp_path, "a", "127.0.0.1:34460")
    b = node_settings(tmp_path, "b", "127.0.0.1:56460")
    with transaction(sessions) as s:
        p.add_line(s, "4721000021", "Support")
        p.add_agent(s, "ola", "Ola", endpoint="PJSIP/ola@cube-node-b", password="x" * 12)
        record_sip_address(s, a, now)
        assert "cube-node-b" not in (render_trunk(s, a) or "")  # b not known yet
        record_sip_address(s, b, now)
    with transaction(sessions) as s:
        assert "[cube-node-b]" in (render_trunk(s, a) or "")
        assert "[cube-node-a]" in (render_trunk(s, b) or "")
        on_b = render(s, b)
        on_a = render(s, a)
    line = (
        "exten => ola,1,Stasis(cube-test,crossnode,${PJSIP_HEADER(read,X-Cube-Call)},PJSIP/ola,"
        "${PJSIP_HEADER(read,X-Cube-Auto-Answer)})"
    )
    assert line in on_b
    assert "exten => ola," not in on_a  # ola's phone is on b's Asterisk
    assert "[cube-from-nodes]" in on_a  # anything else from the trunk is refused there


def test_a_single_node_has_no_trunk(sessions, tmp_path):
    import datetime as dt

    single = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    with transaction(sessions) as s:
        record_sip_address(s, single, dt.datetime.now(dt.UTC))
        assert render_trunk(s, single) is None
        assert s.execute(text("SELECT count(*) FROM nodes")).scalar() == 0


def test_install_never_replaces_a_device_with_a_file(tmp_path):
    """A trunk_path (or dialplan path) naming a device is refused, not replaced: the
    atomic rename would have turned /dev/null into a regular file."""
    import os
    import stat

    from asterisk_cube.dialplan import write_atomically

    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(OSError, match="not a regular file"):
        write_atomically(device, "[cube-node-b]\n")
    assert stat.S_ISCHR(device.stat().st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name != "null"]  # no temp file left


def test_a_phone_of_this_node_is_qualified_for_the_others():
    """The global queue: the agent's node tells the call's node how to dial the phone."""
    from asterisk_cube.core.trunk import qualified

    assert qualified("PJSIP/agent01", "b") == "PJSIP/agent01@cube-node-b"
    assert qualified("PJSIP/agent05@cube-node-c", "b") == "PJSIP/agent05@cube-node-c"
    assert qualified("", "b") == ""
