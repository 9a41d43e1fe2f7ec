import re

import pytest

from asterisk_cube.config import load_settings
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialplan import dp_comment, render, write_atomically
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.demo_data import load_demo


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        env={
            "ASTERISK_CUBE_AGI_PORT": "25573",
            "ASTERISK_CUBE_ARI_APP": "cube-test",
            "ASTERISK_CUBE_DATA_DIR": str(tmp_path),
        }
    )


def extensions(text, context):
    body = text.split(f"[{context}]", 1)[1].split("\n[", 1)[0]
    return re.findall(r"^exten => ([^,]+),1,", body, re.M)


def test_every_did_is_rendered_in_cube_inbound(sessions, settings):
    with transaction(sessions) as s:
        load_demo(s)
        p.add_line(s, "+4722000000", "Plus line")
        text = render(s, settings)
    assert extensions(text, "cube-inbound") == [
        "+4722000000",
        "4721000001",
        "4721000002",
        "4721000003",
        "4721000004",  # the demo's test-call line (agent01 and the supervisor)
        # the demo's outbound campaign's caller ID, in the forms a trunk may deliver it
        "4721000009",
        "+4721000009",
        "21000009",
    ]
    for context in ("[cube-inbound]", "[cube-agents]", "[cube-fallback]"):
        assert context in text


def test_inbound_lines_enter_stasis_and_clients_go_through_agi(sessions, settings):
    with transaction(sessions) as s:
        load_demo(s)
        text = render(s, settings)
    # the caller's presentation is the last argument (ARI's channel JSON has none)
    assert "same => n,Stasis(cube-test,inbound,1,${CALLERID(pres)})" in text
    assert "same => n,AGI(agi://127.0.0.1:25573/entry?client=1&line=3)" in text
    assert "Stasis(cube-test,service,3,1,${CUBE_HOURS},${CALLERID(pres)})" in text
    # The branches use the variables core.entry.EntryDecision.channel_variables() sets.
    assert '$["${CUBE_ACTION}" = "reject"]?blocked' in text
    assert '$["${CUBE_ACTION}" = "announce"]?closed' in text
    assert "Playback(${CUBE_PROMPTS}/blocked,noanswer)" in text
    # After Stasis returns (app down or failed) the call continues in the fallback.
    for block in text.split("exten => ")[1:]:
        if "Stasis(" in block:
            after = block.split("Stasis(", 1)[1]
            assert "Goto(cube-fallback,s,1)" in after.splitlines()[1]


def test_an_outbound_campaigns_caller_id_enters_stasis_as_a_callback(sessions, settings):
    """F-I3: customers call the campaign's caller ID back; no line needs to be added."""
    with transaction(sessions) as s:
        winter = p.add_campaign(s, "Winter", mode="power", skill="sales", caller_id="+4721000009")
        p.add_campaign(s, "Same number", mode="preview", caller_id="21000009")  # first one wins
        p.add_line(s, "4721000005", "Support")
        p.add_campaign(s, "Has a line", mode="preview", caller_id="+4721000005")
        p.add_campaign(s, "No caller ID", mode="preview")
        p.add_campaign(s, "Inbound", direction="inbound", caller_id="4721000006")
        text = render(s, settings)
    assert extensions(text, "cube-inbound") == [
        "4721000005",
        "+4721000009",
        "4721000009",
        "21000009",
    ]
    cid = winter.id
    assert (
        f"exten => +4721000009,1,NoOp(asterisk-cube campaign={cid} callback number)\n"
        f" same => n,Stasis(cube-test,callback,{cid},${{CALLERID(pres)}})\n"
        " same => n,Goto(cube-fallback,s,1)\n"
    ) in text
    assert "exten => 21000009,1,Goto(+4721000009,1)" in text


def test_disabled_line_goes_to_fallback(sessions, settings):
    with transaction(sessions) as s:
        p.add_line(s, "4721000001")
        p.update_line(s, "4721000001", enabled=False)
        text = render(s, settings)
    assert "exten => 4721000001,1,Goto(cube-fallback,s,1)" in text
    assert "Stasis(" not in text.split("[cube-inbound]")[1].split("[cube-agents]")[0]


def test_free_text_cannot_break_the_dialplan(sessions, settings):
    with transaction(sessions) as s:
        p.add_line(s, "4721000001", name="Evil; exten => 666,1,Hangup()\n[ctx]")
        text = render(s, settings)
    assert "[ctx]" not in text
    assert "666,1" not in text
    assert dp_comment("a,b(c);d\ne") == "a_b_c__d_e"


def test_write_atomically_replaces_whole_file(tmp_path):
    target = tmp_path / "etc" / "asterisk-cube.conf"
    write_atomically(target, "one")
    write_atomically(target, "two")
    assert target.read_text() == "two"
    assert [f.name for f in target.parent.iterdir()] == ["asterisk-cube.conf"]
