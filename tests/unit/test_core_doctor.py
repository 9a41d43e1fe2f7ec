"""core/doctor.py: verdicts on what Asterisk answered (issue #15)."""

from asterisk_cube.core import doctor as d

MODULES = "\n".join(
    [
        "Module              Description                 Use Count  Status       Support Level",
        "app_stasis.so       Stasis dialplan application 0          Running      core",
        "res_stasis.so       Stasis application support  19         Running      core",
        "app_amd.so          Answering Machine Detection 0          Not Running  core",
    ]
)


def test_modules_not_running_are_named():
    assert d.loaded_modules(MODULES) == {"app_stasis.so", "res_stasis.so"}
    found = d.modules_finding(MODULES)
    assert not found.ok
    assert "app_amd.so" in found.detail and "res_ari.so" in found.detail
    assert "app_stasis.so" not in found.detail


def test_ami_actions_case_insensitive():
    allowed = {a.upper(): "x" for a in d.REQUIRED_AMI_ACTIONS}
    assert d.ami_actions_finding(allowed).ok
    del allowed["ORIGINATE"]
    found = d.ami_actions_finding(allowed)
    assert not found.ok and found.detail.endswith("Originate")


def test_dialplan_dids_and_context():
    shown = "[ Context 'cube-inbound' created by 'pbx_config' ]\n  '+4721000000' => 1. NoOp()\n"
    assert d.dialplan_finding(shown, ["+4721000000"], "/etc/x.conf").ok
    missing = d.dialplan_finding(shown, ["+4721000000", "4722"], "/etc/x.conf")
    assert not missing.ok and "4722" in missing.detail
    gone = d.dialplan_finding("There is no existence of 'cube-inbound' context", [], "/e/x")
    assert gone.check == "dialplan included" and '#include "/e/x"' in gone.fix


def test_outbound_dial_string():
    assert d.outbound_dial_finding("PJSIP/{number}@carrier").ok
    assert not d.outbound_dial_finding("PJSIP/carrier").ok
    assert not d.outbound_dial_finding("PJSIP/{number}@carrier,30").ok


def test_agi_address_loopback_only_for_a_local_asterisk():
    assert d.agi_address_finding("127.0.0.1", "127.0.0.1").ok
    assert d.agi_address_finding("0.0.0.0", "localhost").ok
    assert not d.agi_address_finding("0.0.0.0", "10.0.0.5").ok
    assert d.agi_address_finding("10.0.0.9", "10.0.0.5").ok


def test_sounds_missing_are_counted():
    found = d.sounds_finding({"formal/closed", "formal/welcome"}, {"formal/closed"}, "/s")
    assert not found.ok and "formal/welcome" in found.detail
    assert d.sounds_finding({"a"}, {"a", "b"}, "/s").ok


def test_campaign_caller_ids_must_route_to_a_line():
    shown = "[ Context 'cube-inbound' ]\n  '4721000009' => 1. NoOp()\n"
    assert d.caller_ids_finding(shown, ["4721000009"]).ok
    found = d.caller_ids_finding(shown, ["4721000009", "4799999999", "4799999999"])
    assert not found.ok and found.detail.endswith("4799999999")
    assert "line add" in found.fix
