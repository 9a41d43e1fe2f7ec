"""The answering-service routes of the agent desktop (script, forward, call note) against the
fake desk, with the client stored in a real (SQLite) database: only the agent's own current
answering call, CSRF, refusals naming the field, the client's own number refused."""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.answering import FJORD_DID, OWN_NUMBER, SALES_TARGETS, TARGETS, add_client
from fakes.web import demo_for, make_accounts, make_settings

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASSWORDS = {"kari": "kari-secret-1", "ola": "ola-secret-12", "nora": "nora-secret-1"}
MONDAY_10_OSLO = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


class Env:
    pass


def make_env(tmp_path, *, tone="formal", hours="mon-sun 00:00-24:00", exception=None):
    sessions, ids = make_accounts(tmp_path)
    hub = EventHub()
    desk = demo_for(hub, ids)
    client = add_client(sessions, desk, tone=tone, hours=hours, exception=exception)
    for username in ("kari", "ola", "nora"):
        desk.agents[ids[username]].permitted.append(client.line_id)
    settings = make_settings(tmp_path)
    mount = desktop_mount(settings, desk, hub, sessions, clock=lambda: MONDAY_10_OSLO)
    app = create_app(settings, object(), extra_routes=[mount])
    e = Env()
    e.desk, e.ids, e.sessions, e.client_ids = desk, ids, sessions, client
    e.client = lambda **kw: TestClient(app, **kw)
    return e


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


def login(client, username):
    resp = client.post("/api/login", json={"username": username, "password": PASSWORDS[username]})
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]


def on_call(env, username="kari", line=None, caller="+4791234567"):
    """A logged-in client on a connected call on the answering line; returns (client, call)."""
    c = env.client()
    login(c, username)
    line = line or env.client_ids.line_id
    assert c.post("/api/start").status_code == 200
    assert c.post("/api/lines", json={"line_ids": [line]}).status_code == 200
    assert c.post("/api/ready").status_code == 200
    call = env.desk.incoming_call(line, caller)
    view = c.post(f"/api/offers/{call}/accept").json()["view"]
    assert view["call"]["call_id"] == call and view["call"]["state"] == "connected"
    return c, call


# --- the script -----------------------------------------------------------------------------


def test_the_script_of_my_answering_call(env):
    c, call = on_call(env)
    view = c.get("/api/me").json()
    assert view["call"]["client_id"] == env.client_ids.client_id
    assert view["call"]["hours"] == "open"
    resp = c.get(f"/api/calls/{call}/script")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["call_id"] == call
    s = body["script"]
    # the client's language (nb) for what the agent says; the agent's name filled in
    assert s["greeting"] == "God morgen, Fjord Regnskap AS, du snakker med Kari Agent."
    assert (s["tone"], s["spell_names"], s["repeat_numbers"]) == ("formal", True, True)
    assert s["instruction"].startswith("Ask what the call is about")
    assert s["hours"]["status"] == "open" and s["hours"]["summary"].startswith("man–søn")
    assert s["handling"]["kind"] == "forward" and s["handling"]["targets"] == TARGETS
    employees = {e["name"]: e for e in s["employees"]}
    assert employees["Kari Holm"]["handling"]["kind"] == "note"
    assert employees["Ola Berg"]["handling"]["targets"] == SALES_TARGETS
    faq = {f["question"]: f for f in s["faq"]}
    assert faq["Wants to buy something?"]["employee_id"] == env.client_ids.sales
    assert faq["Wants to buy something?"]["handling"]["source"] == "employee"


def test_informal_script_and_an_active_exception(tmp_path):
    env = make_env(tmp_path, tone="informal", exception="Closed for stocktaking: notes only.")
    c, call = on_call(env)
    s = c.get(f"/api/calls/{call}/script").json()["script"]
    assert s["greeting"] == "Hei, du har ringt Fjord Regnskap AS – Kari Agent her!"
    assert (s["tone"], s["spell_names"], s["repeat_numbers"]) == ("informal", False, False)
    assert s["exception"]["instruction"] == "Closed for stocktaking: notes only."


def test_script_only_for_my_own_current_answering_call(env):
    kari, call = on_call(env)
    ola = env.client()
    login(ola, "ola")
    # another agent, a made-up id, a non-answering call: all 404, same answer
    assert ola.get(f"/api/calls/{call}/script").status_code == 404
    assert kari.get(f"/api/calls/{call + 1}/script").status_code == 404
    assert kari.get("/api/calls/abc/script").status_code == 400
    nora, other = on_call(env, "nora", line=1)
    resp = nora.get(f"/api/calls/{other}/script")
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    assert env.client().get(f"/api/calls/{call}/script").status_code == 401


# --- forward --------------------------------------------------------------------------------


def test_forward_falls_back_announces_and_hands_over(env):
    c, call = on_call(env)
    view = c.post(f"/api/calls/{call}/forward", json={"employee_id": None}).json()["view"]
    assert view["call"]["forward"] == {
        "status": "ringing",
        "target": TARGETS[0],
        "attempt": 1,
        "attempts": 2,
    }
    env.desk.forward_outcome(call, answered=False)
    fwd = c.get("/api/me").json()["call"]["forward"]
    assert (fwd["status"], fwd["target"], fwd["attempt"]) == ("ringing", TARGETS[1], 2)
    # a second forward while one is going on is refused
    again = c.post(f"/api/calls/{call}/forward", json={})
    assert again.status_code == 409
    # nobody to hand over to yet
    assert c.post(f"/api/calls/{call}/forward/connect").status_code == 409
    env.desk.forward_outcome(call, answered=True)
    assert c.get("/api/me").json()["call"]["forward"]["status"] == "announcing"
    view = c.post(f"/api/calls/{call}/forward/connect").json()["view"]
    assert view["call"] is None and view["state"] == "ready"
    assert ("forward", env.ids["kari"], call, None) in env.desk.calls_log


def test_forward_to_an_employee_and_cancel(env):
    c, call = on_call(env)
    sales = env.client_ids.sales
    view = c.post(f"/api/calls/{call}/forward", json={"employee_id": sales}).json()["view"]
    assert view["call"]["forward"]["target"] == SALES_TARGETS[0]
    view = c.post(f"/api/calls/{call}/forward/cancel").json()["view"]
    assert view["call"]["forward"]["status"] == "failed"
    assert view["call"]["state"] == "connected"  # back with the caller
    assert c.post(f"/api/calls/{call}/forward/cancel").status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"employee_id": "2"}, 400, "employee_id"),
        ({"employee_id": True}, 400, "employee_id"),
        ({"employee_id": -1}, 400, "employee_id"),
        ({"employee_id": 999999}, 404, None),
    ],
)
def test_forward_refuses_bad_employee_ids_without_change(env, body, status, field):
    c, call = on_call(env)
    before = env.desk.snapshot()
    resp = c.post(f"/api/calls/{call}/forward", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json().get("field") == field
    assert env.desk.snapshot() == before


def test_forward_to_a_note_handled_employee_is_refused(env):
    c, call = on_call(env)
    resp = c.post(f"/api/calls/{call}/forward", json={"employee_id": env.client_ids.accounting})
    assert resp.status_code == 400 and resp.json()["field"] == "employee_id"


def test_closed_client_is_not_forwarded(env):
    env.desk.lines[env.client_ids.line_id].hours = "closed"
    c, call = on_call(env)
    before = env.desk.snapshot()
    resp = c.post(f"/api/calls/{call}/forward", json={"employee_id": None})
    assert resp.status_code == 409
    assert "opening hours" in resp.json()["message"]
    assert env.desk.snapshot() == before


def test_forward_needs_csrf_and_my_own_call(env):
    kari, call = on_call(env)
    nora, other = on_call(env, "nora", line=1)  # a call of another kind
    ola = env.client()
    login(ola, "ola")
    before = env.desk.snapshot()
    token = kari.headers.pop("X-CSRF-Token")
    for path in ("forward", "forward/connect", "forward/cancel", "note"):
        resp = kari.post(f"/api/calls/{call}/{path}", json={"message": "x"})
        assert resp.status_code == 403 and resp.json()["error"] == "csrf", path
        resp = ola.post(f"/api/calls/{call}/{path}", json={"message": "x"})
        assert resp.status_code == 404, path
    kari.headers["X-CSRF-Token"] = token
    # a non-answering call of mine: not found either (no script, no forward, no note)
    for path in ("forward", "note"):
        assert nora.post(f"/api/calls/{other}/{path}", json={"message": "x"}).status_code == 404
    assert env.desk.snapshot() == before


# --- call note ------------------------------------------------------------------------------


def test_note_is_taken_with_the_chosen_employee(env):
    c, call = on_call(env)
    view = c.post(
        f"/api/calls/{call}/note",
        json={
            "message": "Wants a call about invoice 42",
            "caller_name": "Per Hansen",
            "callback_number": "912 34 567",
            "employee_id": env.client_ids.accounting,
        },
    ).json()["view"]
    assert view["call"]["notes"] == 1 and view["call"]["registered"] is True
    note = env.desk.notes[0]
    assert (note.message, note.caller_name, note.callback_number, note.employee_id) == (
        "Wants a call about invoice 42",
        "Per Hansen",
        "912 34 567",
        env.client_ids.accounting,
    )
    # after the call ended the card is still open: a note can still be written
    c.post(f"/api/calls/{call}/hangup")
    assert c.post(f"/api/calls/{call}/note", json={"message": "PS"}).status_code == 200
    assert len(env.desk.notes) == 2


@pytest.mark.parametrize("number", [OWN_NUMBER, "22 00 00 00", FJORD_DID, "21000077"])
def test_the_clients_own_number_is_refused_as_callback(env, number):
    c, call = on_call(env)
    before = env.desk.snapshot()
    resp = c.post(
        f"/api/calls/{call}/note", json={"message": "Call back", "callback_number": number}
    )
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["field"] == "callback_number"
    assert "Fjord Regnskap AS's own number" in body["message"]
    assert env.desk.snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 10_001}, "message"),
        ({"message": "x", "caller_name": 5}, "caller_name"),
        ({"message": "x", "callback_number": "12"}, "callback_number"),
        ({"message": "x", "callback_number": "anonymous"}, "callback_number"),
        ({"message": "x", "callback_number": "912 34 56x"}, "callback_number"),
        ({"message": "x", "employee_id": "1"}, "employee_id"),
    ],
)
def test_bad_note_input_names_the_field(env, body, field):
    c, call = on_call(env)
    before = env.desk.snapshot()
    resp = c.post(f"/api/calls/{call}/note", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == field
    assert env.desk.snapshot() == before


def test_employee_of_another_client_is_refused(env):
    with transaction(env.sessions) as s:
        from asterisk_cube.services import answering
        from asterisk_cube.services import provisioning as p

        p.add_client(s, "Other AS")
        stranger = answering.add_employee(s, "Other AS", name="Stranger").id
    c, call = on_call(env)
    resp = c.post(f"/api/calls/{call}/note", json={"message": "x", "employee_id": stranger})
    assert resp.status_code == 400 and resp.json()["field"] == "employee_id"
    assert env.desk.notes == []


def test_refusals_are_translated_for_a_norwegian_agent(env):
    c, call = on_call(env, "nora")
    resp = c.post(
        f"/api/calls/{call}/note", json={"message": "Ring meg", "callback_number": OWN_NUMBER}
    )
    assert resp.status_code == 400
    assert "Fjord Regnskap AS" in resp.json()["message"]
    assert "own number" not in resp.json()["message"]
    env.desk.lines[env.client_ids.line_id].hours = "holiday"
    resp = c.post(f"/api/calls/{call}/forward", json={})
    assert resp.status_code == 409 and "opening hours" not in resp.json()["message"]


def test_desk_page_has_the_script_card(env):
    c = env.client()
    login(c, "kari")
    page = c.get("/desk").text
    for element in ('id="script-card"', 'id="script-greeting"', 'id="note-form"'):
        assert element in page
    with env.sessions() as s:
        assert s.get(m.Client, env.client_ids.client_id).language == "nb"
