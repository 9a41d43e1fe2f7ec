"""The agent's script view built from the stored client configuration (F-S1..F-S7)."""

from datetime import UTC, datetime

import pytest

from asterisk_cube.core.script import DayPartWords
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import answering
from asterisk_cube.services import provisioning as p
from asterisk_cube.web.script_view import UnknownClient, client_script, script_data, script_html

MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Oslo
MONDAY_20 = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def client_id(sessions):
    with transaction(sessions) as s:
        c = p.add_client(
            s,
            "Acme <AS>",
            greeting="{greeting}, Acme AS, this is {agent}.",
            greeting_informal="Hi, Acme here!",
            instruction="Ask what it is about.",
            hours="mon-fri 08:00-16:00",
            handling="forward",
            forward1="+4722000001",
            forward2="+4722000002",
            own_numbers=["+4722000000"],
        )
        p.add_line(s, "4721000099", client="Acme <AS>")
        answering.add_employee(
            s, "Acme <AS>", name="Kari", department="Accounting", handling="note"
        )
        answering.add_employee(
            s,
            "Acme <AS>",
            name="Ola",
            department="Sales",
            handling="forward",
            forward1="PJSIP/agent02",
        )
        answering.add_faq(s, "Acme <AS>", "Invoice?", "Accounting handles it.")
        answering.add_faq(s, "Acme <AS>", "Buy?", "Sales.", handling="forward", employee="Ola")
        return c.id


def data_at(sessions, cid, now, **kwargs):
    with sessions() as s:
        return script_data(client_script(s, cid, now, **kwargs))


def test_formal_script_inside_hours(sessions, client_id):
    d = data_at(sessions, client_id, MONDAY_10, agent_name="Per")
    assert d["greeting"] == "Good morning, Acme AS, this is Per."
    assert (d["tone"], d["spell_names"], d["repeat_numbers"]) == ("formal", True, True)
    assert d["instruction"] == "Ask what it is about."
    assert d["hours"]["status"] == "open" and d["hours"]["closes_at"].startswith("2026-11-23T16")
    assert d["hours"]["summary"].startswith("Mon–Fri 08:00–16:00")
    assert d["handling"] == {
        "kind": "forward",
        "targets": ["+4722000001", "+4722000002"],
        "ring_seconds": 20,
        "source": "standard",
        "announce_hours": False,
    }
    employees = {e["name"]: e["handling"] for e in d["employees"]}
    assert employees["Kari"]["kind"] == "note"
    assert employees["Ola"]["targets"] == ["PJSIP/agent02"]
    faq = {f["question"]: f["handling"] for f in d["faq"]}
    assert faq["Buy?"]["source"] == "employee" and faq["Buy?"]["targets"] == ["PJSIP/agent02"]
    assert faq["Invoice?"]["source"] == "standard"
    assert d["exception"] is None


def test_outside_hours_and_an_active_exception_override(sessions, client_id):
    d = data_at(sessions, client_id, MONDAY_20)
    assert d["hours"]["status"] == "closed"
    assert d["handling"]["source"] == "closed" and d["handling"]["announce_hours"] is True
    with transaction(sessions) as s:
        answering.add_exception(
            s,
            "Acme <AS>",
            "Everyone at the fair: forward to the stand.",
            until="2026-11-30",
            starts="2026-11-20",
            handling="forward",
            forward1="+4799999999",
            now=MONDAY_10,
        )
    d = data_at(sessions, client_id, MONDAY_10, words=DayPartWords("God morgen", "", ""))
    assert d["exception"]["instruction"].startswith("Everyone at the fair")
    assert d["exception"]["overrides"] is True
    assert d["timezone"] == "Europe/Oslo"  # the desk shows "until" on the client's clock
    assert d["handling"]["source"] == "exception"
    assert d["handling"]["targets"] == ["+4799999999"]
    assert all(e["handling"]["source"] == "exception" for e in d["employees"])
    assert d["greeting"].startswith("God morgen")


def test_informal_tone(sessions, client_id):
    with transaction(sessions) as s:
        s.get(m.Client, client_id).tone = m.Tone.INFORMAL
    d = data_at(sessions, client_id, MONDAY_10)
    assert d["greeting"] == "Hi, Acme here!"
    assert (d["tone"], d["prompt_set"], d["spell_names"], d["repeat_numbers"]) == (
        "informal",
        "informal",
        False,
        False,
    )
    assert "Spell names" not in script_html(d)


def test_html_fragment_escapes_client_text(sessions, client_id):
    html = script_html(data_at(sessions, client_id, MONDAY_10))
    assert "Acme &lt;AS&gt;" in html and "<AS>" not in html
    assert 'class="cube-script tone-formal"' in html
    assert "Announce and forward" in html and "Spell names back" in html
    assert html.count("<tr data-employee=") == 2


def test_unknown_client(sessions):
    with sessions() as s, pytest.raises(UnknownClient):
        client_script(s, 999, MONDAY_10)
