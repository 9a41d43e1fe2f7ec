"""The agent desktop's web layer against the in-memory fake desk: login, sessions, CSRF,
roles, an agent seeing only its own work, and malformed input refused without change."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import demo_for, make_accounts, make_settings

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.web import auth
from asterisk_cube.web.app import create_app
from asterisk_cube.web.auth import require_role
from asterisk_cube.web.desktop import desktop_mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASSWORDS = {
    "kari": "kari-secret-1",
    "ola": "ola-secret-12",
    "siri": "siri-secret-1",
    "adam": "adam-secret-1",
    "nora": "nora-secret-1",
    "gone": "gone-secret-1",
}


@require_role("supervisor")
async def supervisor_only(request, user):
    return JSONResponse({"ok": True, "role": user.role})


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    return make_accounts(tmp_path_factory.mktemp("accounts"))


@pytest.fixture
def env(accounts, tmp_path):
    sessions, ids = accounts
    hub = EventHub()
    desk = demo_for(hub, ids)
    settings = make_settings(tmp_path)
    mount = desktop_mount(
        settings, desk, hub, sessions, extra_routes=[Route("/panel-test", supervisor_only)]
    )
    app = create_app(settings, object(), extra_routes=[mount])

    class Env:
        pass

    e = Env()
    e.desk, e.ids, e.sessions, e.app, e.settings = desk, ids, sessions, app, settings
    e.client = lambda **kw: TestClient(app, **kw)
    return e


def login(client, username, password=None):
    resp = client.post(
        "/api/login", json={"username": username, "password": password or PASSWORDS[username]}
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


def working(client, lines=(1, 2, 3)):
    assert client.post("/api/start").status_code == 200
    assert client.post("/api/lines", json={"line_ids": list(lines)}).status_code == 200
    view = client.post("/api/ready").json()["view"]
    assert view["state"] == "ready"
    return view


# --- login ------------------------------------------------------------------------------


def test_login_page_has_a_csrf_protected_form(env):
    c = env.client()
    resp = c.get("/login")
    assert resp.status_code == 200
    assert 'name="csrf_token"' in resp.text
    assert resp.headers["content-security-policy"].startswith("default-src 'self'")
    assert c.get("/desk", follow_redirects=False).headers["location"] == "/login"
    assert c.get("/", follow_redirects=False).headers["location"] == "/login"


def test_the_mount_leaves_the_apps_own_routes_alone(env):
    c = env.client()
    assert c.get("/version").json()["name"] == "asterisk-cube"
    assert c.get("/health").status_code == 200
    assert c.get("/no/such/page").status_code == 404
    assert c.get("/desk/static/desk.js").status_code == 200
    assert c.get("/desk/static/../desktop.py").status_code == 404


def _form_login(c, username, password):
    page = c.get("/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_form_login_and_logout(env):
    c = env.client()
    resp = _form_login(c, "kari", PASSWORDS["kari"])
    assert resp.status_code == 303 and resp.headers["location"] == "/desk"
    page = c.get("/desk")
    assert page.status_code == 200 and "Kari Agent" in page.text
    token = page.text.split('"csrf": "', 1)[1].split('"', 1)[0]
    assert c.post("/api/logout", headers={"X-CSRF-Token": token}).json() == {"ok": True}
    assert c.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("username", "password"),
    [("kari", "wrong-password"), ("nobody", "kari-secret-1"), ("gone", "gone-secret-1")],
)
def test_bad_login_is_refused_without_saying_which_part_was_wrong(env, username, password):
    c = env.client()
    resp = _form_login(c, username, password)
    assert resp.status_code == 401
    assert "Wrong username or password." in resp.text
    assert c.get("/api/me").status_code == 401
    api = c.post("/api/login", json={"username": username, "password": password})
    assert api.status_code == 401
    assert api.json()["error"] == "bad_login"
    assert api.json()["message"] == "Wrong username or password."


def test_form_login_without_csrf_token_is_refused(env):
    c = env.client()
    resp = c.post(
        "/login", data={"username": "kari", "password": PASSWORDS["kari"]}, follow_redirects=False
    )
    assert resp.status_code == 403
    assert c.get("/api/me").status_code == 401


def test_repeated_failures_are_throttled(env):
    c = env.client()
    codes = [
        c.post("/api/login", json={"username": "ola", "password": f"nope-{i}"}).status_code
        for i in range(6)
    ]
    assert codes == [401] * 5 + [429]
    # even the right password waits out the window
    resp = c.post("/api/login", json={"username": "ola", "password": PASSWORDS["ola"]})
    assert resp.status_code == 429 and resp.json()["error"] == "throttled"


def test_login_body_must_be_json_with_both_fields(env):
    c = env.client()
    resp = c.post("/api/login", content=b"username=kari", headers={"content-type": "text/plain"})
    assert resp.status_code == 415
    resp = c.post("/api/login", json={"username": "kari"})
    assert resp.status_code == 400 and resp.json()["field"] == "password"
    resp = c.post("/api/login", json={"username": 5, "password": "x"})
    assert resp.status_code == 400 and resp.json()["field"] == "username"


def test_deactivated_agent_loses_its_session(env, monkeypatch):
    c = env.client()
    login(c, "nora")
    assert c.get("/api/me").status_code == 200
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)
    with transaction(env.sessions) as s:
        s.execute(update(m.Agent).where(m.Agent.username == "nora").values(active=False))
    try:
        assert c.get("/api/me").status_code == 401
    finally:
        with transaction(env.sessions) as s:
            s.execute(update(m.Agent).where(m.Agent.username == "nora").values(active=True))


def test_secret_key_is_generated_once_and_kept(tmp_path):
    settings = make_settings(tmp_path)
    key = auth.load_secret_key(settings)
    path = tmp_path / auth.SECRET_FILE
    assert len(key) > 40 and path.stat().st_mode & 0o777 == 0o600
    assert auth.load_secret_key(settings) == key
    settings.web.secret_key = "from-settings"
    assert auth.load_secret_key(settings) == "from-settings"


# --- CSRF and roles ----------------------------------------------------------------------


def test_post_without_or_with_wrong_csrf_token_is_refused_and_changes_nothing(env):
    c = env.client()
    token = login(c, "kari")
    before = env.desk.snapshot()
    del c.headers["X-CSRF-Token"]
    resp = c.post("/api/start")
    assert resp.status_code == 403 and resp.json()["error"] == "csrf"
    resp = c.post("/api/start", headers={"X-CSRF-Token": token[:-2] + "xx"})
    assert resp.status_code == 403
    assert env.desk.snapshot() == before
    assert c.post("/api/start", headers={"X-CSRF-Token": token}).status_code == 200


def test_csrf_token_of_another_session_does_not_work(env):
    a, b = env.client(), env.client()
    login(a, "kari")
    token_b = login(b, "ola")
    resp = a.post("/api/start", headers={"X-CSRF-Token": token_b})
    assert resp.status_code == 403


@pytest.mark.parametrize(("username", "status"), [("kari", 403), ("siri", 200), ("adam", 200)])
def test_require_role(env, username, status):
    c = env.client()
    assert c.get("/panel-test").status_code == 401
    login(c, username)
    assert c.get("/panel-test").status_code == status


def test_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError):
        require_role("superhero")


# --- an agent sees only its own work -----------------------------------------------------


def test_forged_call_ids_are_refused_and_change_nothing(env):
    kari, ola = env.client(), env.client()
    login(kari, "kari")
    login(ola, "ola")
    working(kari, [1])
    ola.post("/api/start")
    call = env.desk.incoming_call(1, "+4791234567")
    assert kari.get("/api/me").json()["offer"]["call_id"] == call
    before = env.desk.snapshot()
    log_before = list(env.desk.calls_log)
    for path in (
        f"/api/offers/{call}/accept",
        f"/api/offers/{call}/decline",
        f"/api/calls/{call}/hangup",
        f"/api/calls/{call}/close",
    ):
        resp = ola.post(path)
        assert resp.status_code == 404, path
        body = resp.json()
        assert body["error"] == "not_found" and body["message"]
    resp = ola.post(f"/api/calls/{call}/enquiry", json={"topic_ids": [1], "comment": "x"})
    assert resp.status_code == 404
    assert env.desk.snapshot() == before
    assert env.desk.calls_log == log_before
    # and kari still can
    view = kari.post(f"/api/offers/{call}/accept").json()["view"]
    assert view["state"] == "busy" and view["call"]["call_id"] == call


def test_request_body_agent_id_is_ignored(env):
    c = env.client()
    login(c, "ola")
    view = c.post("/api/start", json={"agent_id": env.ids["kari"]}).json()["view"]
    assert view["agent_id"] == env.ids["ola"]
    assert env.desk.agents[env.ids["kari"]].state == "logged_out"


def test_lines_the_agent_may_not_serve_are_refused(env):
    c = env.client()
    login(c, "ola")  # permitted on lines 1 and 2
    c.post("/api/start")
    before = env.desk.snapshot()
    resp = c.post("/api/lines", json={"line_ids": [1, 3]})
    assert resp.status_code == 403 and resp.json()["error"] == "not_permitted"
    assert env.desk.snapshot() == before


def test_missed_calls_of_other_lines_are_not_yours(env):
    kari, ola = env.client(), env.client()
    login(kari, "kari")
    login(ola, "ola")
    call = env.desk.incoming_call(3, "+4798765432")  # line 3: kari only
    env.desk.caller_hangs_up(call)
    missed = kari.get("/api/me").json()["missed"]
    assert [x["caller"] for x in missed] == ["+4798765432"]
    assert ola.get("/api/me").json()["missed"] == []
    before = env.desk.snapshot()
    missed_id = missed[0]["missed_id"]
    assert ola.post(f"/api/missed/{missed_id}/processed").status_code == 404
    assert ola.post(f"/api/missed/{missed_id}/callback").status_code == 404
    assert env.desk.snapshot() == before
    view = kari.post(f"/api/missed/{missed_id}/processed").json()["view"]
    assert view["missed"] == []


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/lines", b"{not json", "body"),
        ("/api/lines", b"[1, 2]", "body"),
        ("/api/lines", b"{}", "line_ids"),
        ("/api/lines", b'{"line_ids": "1,2"}', "line_ids"),
        ("/api/lines", b'{"line_ids": [1, "2"]}', "line_ids"),
        ("/api/lines", b'{"line_ids": [true]}', "line_ids"),
        ("/api/lines", b'{"line_ids": [-1]}', "line_ids"),
        ("/api/pause", b"{}", "reason"),
        ("/api/pause", b'{"reason": 7}', "reason"),
        ("/api/pause", b'{"reason": "nap"}', "reason"),
        ("/api/wrapup/extend", b'{"seconds": "30"}', "seconds"),
        ("/api/wrapup/extend", b'{"seconds": 99999}', "seconds"),
        ("/api/offers/abc/accept", b"", "call_id"),
        ("/api/offers/0/accept", b"", "call_id"),
        ("/api/offers/99999999999999999999/accept", b"", "call_id"),
        ("/api/calls/1x/close", b"", "call_id"),
        ("/api/calls/5/enquiry", b'{"topic_ids": "all"}', "topic_ids"),
        ("/api/calls/5/enquiry", b'{"topic_ids": [1], "comment": 3}', "comment"),
        ("/api/calls/5/contact", b'{"contact_id": "7"}', "contact_id"),
        ("/api/calls/5/contact/new", b'{"name": "", "phone": ""}', "name"),
        ("/api/calls/5/contact/new", b'{"name": "A", "email": "not-mail"}', "email"),
        ("/api/calls/5/contact/new", b'{"name": "A", "phone": "12ab34"}', "phone"),
        ("/api/missed/x/processed", b"", "missed_id"),
        ("/api/language", b'{"language": "klingon"}', "language"),
    ],
)
def test_malformed_input_is_refused_naming_the_field(env, path, body, field):
    c = env.client()
    login(c, "kari")
    c.post("/api/start")
    before = env.desk.snapshot()
    log_before = list(env.desk.calls_log)
    resp = c.post(path, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    data = resp.json()
    assert data["error"] == "invalid"
    assert data["field"] == field
    assert data["message"].startswith(field + ":")
    assert env.desk.snapshot() == before
    assert env.desk.calls_log == log_before


def test_form_encoded_body_on_the_json_api_is_refused(env):
    c = env.client()
    login(c, "kari")
    c.post("/api/start")
    resp = c.post("/api/lines", data={"line_ids": "1"})
    assert resp.status_code == 415 and resp.json()["field"] == "body"


def test_oversized_body_is_refused(env):
    c = env.client()
    login(c, "kari")
    resp = c.post(
        "/api/calls/5/enquiry",
        content=b'{"topic_ids": [], "comment": "' + b"x" * 100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code in (400, 413)


def test_overlong_comment_names_the_field(env):
    c = env.client()
    login(c, "kari")
    resp = c.post("/api/calls/5/enquiry", json={"topic_ids": [], "comment": "x" * 5000})
    assert resp.status_code == 400 and resp.json()["field"] == "comment"


# --- the work flow through the API -----------------------------------------------------


def test_offer_accept_screen_pop_enquiry_and_forced_registration(env):
    c = env.client()
    login(c, "kari")
    view = c.get("/api/me").json()
    assert view["state"] == "logged_out"
    assert [line["line_id"] for line in view["lines"]] == [1, 2, 3]
    working(c, [1, 3])
    call = env.desk.incoming_call(3, "+4791234567")
    offer = c.get("/api/me").json()["offer"]
    assert offer["call_id"] == call and offer["caller"] == "+4791234567"
    view = c.post(f"/api/offers/{call}/accept").json()["view"]
    pop = view["call"]
    assert view["state"] == "busy" and pop["did"] == "+4721000003"
    assert {x["name"] for x in pop["contacts"]} == {"Kari Nordmann", "Ola Nordmann"}
    assert pop["registration_required"] and not pop["registered"]
    kari_nordmann = next(x for x in pop["contacts"] if x["name"] == "Kari Nordmann")
    view = c.post(f"/api/calls/{call}/contact", json={"contact_id": kari_nordmann["contact_id"]})
    assert view.json()["view"]["call"]["contact_id"] == kari_nordmann["contact_id"]
    view = c.post(f"/api/calls/{call}/hangup").json()["view"]
    assert view["state"] == "wrap_up" and view["call"]["state"] == "ended"

    before = env.desk.snapshot()
    resp = c.post(f"/api/calls/{call}/close")
    assert resp.status_code == 409 and resp.json()["error"] == "registration_required"
    assert c.post("/api/wrapup/finish").status_code == 409
    assert env.desk.snapshot() == before

    mood, product = pop["categories"][0], pop["categories"][1]
    two_moods = [t["topic_id"] for t in mood["topics"][:2]]
    resp = c.post(f"/api/calls/{call}/enquiry", json={"topic_ids": two_moods, "comment": ""})
    assert resp.status_code == 400 and resp.json()["field"] == "topic_ids"
    topics = [mood["topics"][0]["topic_id"], *[t["topic_id"] for t in product["topics"][:2]]]
    view = c.post(
        f"/api/calls/{call}/enquiry", json={"topic_ids": topics, "comment": "Ny profil"}
    ).json()["view"]
    assert view["call"]["registered"]
    assert c.post("/api/wrapup/extend", json={"seconds": 30}).status_code == 200
    view = c.post(f"/api/calls/{call}/close").json()["view"]
    assert view["call"] is None
    view = c.post("/api/wrapup/finish").json()["view"]
    assert view["state"] == "ready"


def test_contact_search_and_create(env):
    c = env.client()
    login(c, "kari")
    working(c, [1])
    call = env.desk.incoming_call(1, "+4740000000")
    view = c.post(f"/api/offers/{call}/accept").json()["view"]
    assert view["call"]["contacts"] == []
    found = c.get("/api/contacts", params={"q": "fjord"}).json()["contacts"]
    assert {x["name"] for x in found} == {"Kari Nordmann", "Ola Nordmann"}
    view = c.post(
        f"/api/calls/{call}/contact/new",
        json={"name": "Nils Ny", "phone": "+4740000000", "company": "", "email": "n@ny.no"},
    ).json()["view"]
    assert [x["name"] for x in view["call"]["contacts"]] == ["Nils Ny"]
    assert view["call"]["contact_id"] == view["call"]["contacts"][0]["contact_id"]


def test_pause_during_a_call_waits_for_wrap_up(env):
    c = env.client()
    login(c, "kari")
    working(c, [1])
    call = env.desk.incoming_call(1, "+4740000001")
    c.post(f"/api/offers/{call}/accept")
    assert c.post("/api/pause", json={"reason": "lunch"}).json()["view"]["state"] == "busy"
    c.post(f"/api/calls/{call}/hangup")
    c.post(f"/api/calls/{call}/close")
    view = c.post("/api/wrapup/finish").json()["view"]
    assert view["state"] == "paused" and view["pause_reason"] == "lunch"


def test_a_requested_pause_is_shown_and_can_be_taken_back(env):
    c = env.client()
    login(c, "kari")
    working(c, [1])
    assert c.post("/api/pause/cancel").status_code == 409  # nothing requested
    call = env.desk.incoming_call(1, "+4740000001")
    c.post(f"/api/offers/{call}/accept")
    view = c.post("/api/pause", json={"reason": "lunch"}).json()["view"]
    assert (view["state"], view["pause_requested"]) == ("busy", "lunch")
    assert c.post("/api/pause/cancel").json()["view"]["pause_requested"] is None
    c.post(f"/api/calls/{call}/hangup")
    c.post(f"/api/calls/{call}/close")
    view = c.post("/api/wrapup/finish").json()["view"]
    assert view["state"] == "ready"


def test_illegal_state_is_a_conflict(env):
    c = env.client()
    login(c, "kari")
    # not in wrap-up (ready before work starts is no refusal: work starts ready, as the
    # distributor does -- tests/unit/test_desk_contract.py)
    resp = c.post("/api/wrapup/finish")
    assert resp.status_code == 409 and resp.json()["error"] == "illegal_state"


def test_logout_during_a_call_is_refused(env):
    c = env.client()
    login(c, "kari")
    working(c, [1])
    call = env.desk.incoming_call(1, "+4740000002")
    c.post(f"/api/offers/{call}/accept")
    resp = c.post("/api/logout")
    assert resp.status_code == 409
    assert c.get("/api/me").status_code == 200


def test_agent_unknown_to_the_desk_gets_404(env):
    c = env.client()
    login(c, "kari")
    env.desk.agents.pop(env.ids["kari"])
    resp = c.get("/api/me")
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    assert c.get("/desk").status_code == 404


# --- language ----------------------------------------------------------------------------


def test_language_from_the_agent_row_then_accept_language(env):
    c = env.client()
    login(c, "nora")  # language nb in the agents table
    page = c.get("/desk").text
    assert 'lang="nb"' in page and "Henvendelsesregistrering" in page and "Besvar" in page
    anon = env.client(headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"})
    assert "Brukernavn" in anon.get("/login").text
    assert "Username" in env.client().get("/login").text


def test_switching_language_is_kept(env):
    c = env.client()
    login(c, "ola")
    assert "Enquiry registration" in c.get("/desk").text
    assert c.post("/api/language", json={"language": "nb-NO"}).json()["language"] == "nb"
    assert "Henvendelsesregistrering" in c.get("/desk").text
    resp = c.post("/api/wrapup/finish")  # refusal messages are translated too
    assert resp.json()["message"] == "Det går ikke i statusen du har nå."
    c2 = env.client()  # the choice is stored on the agent
    login(c2, "ola")
    assert "Henvendelsesregistrering" in c2.get("/desk").text
    c2.post("/api/language", json={"language": "en"})


def test_invalid_field_messages_are_translated(env):
    c = env.client()
    login(c, "nora")
    resp = c.post("/api/lines", json={"line_ids": "x"})
    assert resp.json()["message"] == "line_ids: må være en liste med id-er (heltall)"
