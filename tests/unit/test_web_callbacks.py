"""Scheduled callbacks from the agent desktop (web/callbacks.py, F-E6) against the real
distributor and a SQLite database: the call on the agent's card decides the contact, the
time is the campaign's local time, bad input and forged ids are refused with nothing
written, agents see and cancel only their own and "for all" callbacks of their campaigns.
During a dialer call the real dialer (with a fake telephony) writes the callback when the
call ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sys
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes.web import make_accounts, make_app, make_settings
from support import polling
from support.dialer import FakeTelephony

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer.service import Dialer
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASSWORDS = {"kari": "kari-secret-1", "ola": "ola-secret-12", "nora": "nora-secret-1"}
OSLO = ZoneInfo("Europe/Oslo")


class Feedback:
    """Stands in for the dialer where its deferral is not what is tested."""

    def __init__(self):
        self.calls = []

    def schedule_callback(self, agent_id, call_id, due_at, *, for_me=True, comment=""):
        self.calls.append((agent_id, call_id, due_at, for_me, comment))


def local(days=1, hour=15, minute=0) -> str:
    """A local time in the campaign's zone, as a datetime-local input sends it."""
    day = dt.datetime.now(OSLO).date() + dt.timedelta(days=days)
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def utc_of(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=OSLO).astimezone(dt.UTC)


def spring_forward_gap() -> str:
    """02:30 on the next day the clocks skip it in Oslo (within a year)."""
    day = dt.datetime.now(OSLO).date() + dt.timedelta(days=1)
    for _ in range(370):
        naive = dt.datetime(day.year, day.month, day.day, 2, 30)
        back = naive.replace(tzinfo=OSLO).astimezone(dt.UTC).astimezone(OSLO).replace(tzinfo=None)
        if back != naive:
            return naive.strftime("%Y-%m-%dT%H:%M")
        day += dt.timedelta(days=1)
    raise AssertionError("no DST change within a year")


def build(tmp_path, *, dialer=False, **campaign):
    """Accounts kari, ola (skill sales), nora (no skill); campaigns Winter (sales), Other
    (skill other), an inbound one; the real distributor; the desk app. With ``dialer``,
    the real dialer (fake telephony) runs Winter in power mode."""
    sessions, ids = make_accounts(tmp_path)
    with transaction(sessions) as s:
        sales, other = p.get_or_create_skill(s, "sales"), p.get_or_create_skill(s, "other")
        for name in ("kari", "ola", "nora"):
            agent = s.get(m.Agent, ids[name])
            agent.endpoint = f"PJSIP/{name}"
            if name != "nora":
                agent.skills.append(sales)
        s.flush()
        del other
        campaign = {"wrap_up": 60, "callback_reservation": 20, **campaign}
        winter = p.add_campaign(s, "Winter", mode="power", skill="sales", **campaign)
        elsewhere = p.add_campaign(s, "Other", mode="power", skill="other")
        inbound = p.add_campaign(s, "Hot", direction="inbound")
        contacts = {}
        for key, camp, phone in (
            ("w1", winter, "+4791000001"),
            ("w2", winter, "+4791000002"),
            ("w3", winter, "+4791000003"),
            ("other", elsewhere, "+4791000004"),
            ("inbound", inbound, "+4791000005"),
        ):
            row = m.Contact(campaign_id=camp.id, phone=phone, name=f"Contact {key}")
            s.add(row)
            s.flush()
            contacts[key] = row.id
        loose = m.Contact(phone="+4791000006", name="No campaign")
        s.add(loose)
        s.flush()
        contacts["loose"] = loose.id
        camps = {"winter": winter.id, "other": elsewhere.id, "inbound": inbound.id}
        if dialer:
            p.set_campaign_status(s, "Winter", "running")
            for key in ("w2", "w3", "other", "inbound"):  # only w1 is dialed
                s.get(m.Contact, contacts[key]).status = m.ContactStatus.DONE
    hub = EventHub()
    tel = FakeTelephony()
    distributor = Distributor(sessions, hub, tel)
    distributor.load()
    feedback = Feedback()
    the_dialer = None
    if dialer:
        the_dialer = Dialer(
            sessions,
            distributor,
            hub,
            tel,
            tick=0.01,
            ring_timeout=0.5,
            agent_ring_timeout=0.2,
            connect_budget=0.5,
            min_agent_time=0.05,
            fair_answer_time=0.1,
            bridge_margin=0.01,
        )
    settings = make_settings(tmp_path)
    app = make_app(settings, distributor, hub, sessions, dialer=the_dialer or feedback)
    return SimpleNamespace(
        sessions=sessions,
        ids=ids,
        camps=camps,
        contacts=contacts,
        d=distributor,
        app=app,
        feedback=feedback,
        dialer=the_dialer,
        tel=tel,
    )


async def client(env, username):
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=env.app), base_url="http://testserver")
    resp = await c.post("/api/login", json={"username": username, "password": PASSWORDS[username]})
    assert resp.status_code == 200, resp.text
    c.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    return c


async def on_call(env, username, contact="w1", campaign="winter", *, state="ended"):
    """``username`` ready, then an outbound power call to ``contact`` on its card:
    ``connecting``, ``connected`` (its contact being dialed) or ``ended`` (written)."""
    agent_id = env.ids[username]
    if (await env.d.view(agent_id)).state == "logged_out":
        await env.d.login(agent_id)
        await env.d.ready(agent_id)
    contact_id = env.contacts[contact] if contact else None
    with transaction(env.sessions) as s:
        row = m.Call(
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=env.camps[campaign],
            contact_id=contact_id,
            started_at=env.d.now(),
        )
        s.add(row)
        s.flush()
        call_id = row.id
        if contact_id:
            s.get(m.Contact, contact_id).status = m.ContactStatus.DIALING
    env.d.outbound_started(
        call_id=call_id,
        agent_id=agent_id,
        campaign_id=env.camps[campaign],
        contact_id=contact_id,
        number="+4791000001",
        channel_id=f"ch-{call_id}",
        mode="power",
        connected=state != "connecting",
    )
    if state == "ended":
        env.d.outbound_ended(call_id)
        with transaction(env.sessions) as s:  # what the dialer writes at the end
            if contact_id:
                s.get(m.Contact, contact_id).status = m.ContactStatus.DONE
    return call_id


def callbacks_in_db(env):
    with transaction(env.sessions) as s:
        return [
            (r.contact_id, r.agent_id, r.due_at, r.comment, r.status.value, r.created_by)
            for r in s.scalars(select(m.ScheduledCallback).order_by(m.ScheduledCallback.id))
        ]


def contact_status(env, key):
    with transaction(env.sessions) as s:
        return s.get(m.Contact, env.contacts[key]).status.value


@pytest.fixture
def env(tmp_path):
    return build(tmp_path)


# --- scheduling ----------------------------------------------------------------------------


async def test_after_the_call_it_is_written_in_the_campaigns_zone(env):
    kari = await client(env, "kari")
    call = await on_call(env, "kari")
    facts = (await kari.get(f"/api/calls/{call}/callback")).json()
    assert facts["contact_id"] == env.contacts["w1"] and facts["campaign"] == "Winter"
    assert facts["timezone"] == "Europe/Oslo" and facts["reservation_minutes"] == 20
    assert facts["pending"] is None and facts["deferred"] is False
    shown = dt.datetime.fromisoformat(facts["now_local"]).replace(tzinfo=OSLO)
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - shown < dt.timedelta(minutes=2)

    when = local(days=1, hour=15)
    resp = await kari.post(
        f"/api/calls/{call}/callback",
        json={"due_at": when, "comment": "Wants the blue one", "for": "me"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ok"] and body["deferred"] is False and body["view"]["call"]["call_id"] == call
    cb = body["callback"]
    assert cb["id"] and cb["due_local"] == when.replace("T", " ") and cb["for"] == "me"
    assert callbacks_in_db(env) == [
        (
            env.contacts["w1"],
            env.ids["kari"],
            utc_of(when),
            "Wants the blue one",
            "pending",
            env.ids["kari"],
        )
    ]
    assert contact_status(env, "w1") == "callback"

    (row,) = (await kari.get("/api/callbacks")).json()["callbacks"]
    assert (row["id"], row["state"], row["for"], row["comment"]) == (
        cb["id"],
        "scheduled",
        "me",
        "Wants the blue one",
    )
    assert row["due_local"] == when.replace("T", " ") and row["cancellable"]
    assert row["phone"] == "+4791000001" and row["campaign"] == "Winter"
    # the form now says one is pending; a new time replaces it
    pending = (await kari.get(f"/api/calls/{call}/callback")).json()["pending"]
    assert pending == {
        "id": cb["id"],
        "due_local": when.replace("T", " "),
        "for": "me",
        "comment": "Wants the blue one",
    }
    later = local(days=2, hour=9, minute=30)
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": later, "for": "all"})
    assert resp.status_code == 200, resp.text
    states = [(r[1], r[2], r[4]) for r in callbacks_in_db(env)]
    assert states == [
        (env.ids["kari"], utc_of(when), "cancelled"),
        (None, utc_of(later), "pending"),
    ]


async def test_for_all_agents_is_seen_and_cancelled_by_the_campaigns_agents_only(env):
    kari, ola, nora = [await client(env, n) for n in ("kari", "ola", "nora")]
    call = await on_call(env, "kari")
    resp = await kari.post(
        f"/api/calls/{call}/callback",
        json={"due_at": local(hour=10), "comment": "anyone", "for": "all"},
    )
    assert resp.status_code == 200, resp.text
    for_all = resp.json()["callback"]["id"]
    call2 = await on_call(env, "kari", contact="w2")
    resp = await kari.post(
        f"/api/calls/{call2}/callback", json={"due_at": local(hour=11), "comment": "mine"}
    )
    assert resp.status_code == 200, resp.text  # "for" defaults to me
    mine = resp.json()["callback"]["id"]

    kari_rows = (await kari.get("/api/callbacks")).json()
    assert [(r["id"], r["for"]) for r in kari_rows["callbacks"]] == [
        (for_all, "all"),
        (mine, "me"),
    ]
    assert kari_rows["campaigns"] == 1
    ola_rows = (await ola.get("/api/callbacks")).json()["callbacks"]
    assert [(r["id"], r["for"]) for r in ola_rows] == [(for_all, "all")]
    nora_rows = (await nora.get("/api/callbacks")).json()
    assert nora_rows == {"callbacks": [], "campaigns": 0}  # not her campaign

    # ola cannot cancel kari's own, nor can nora the one for all of a campaign not hers
    for c, callback_id in ((ola, mine), (nora, for_all)):
        resp = await c.post(f"/api/callbacks/{callback_id}/cancel")
        assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    assert [r[4] for r in callbacks_in_db(env)] == ["pending", "pending"]
    # ola may cancel the one for all agents of his campaign: the contact is dialed again
    resp = await ola.post(f"/api/callbacks/{for_all}/cancel")
    assert resp.status_code == 200, resp.text
    assert [r["state"] for r in resp.json()["callbacks"]] == ["cancelled"]
    assert contact_status(env, "w1") == "not_answered"
    # kari still sees it, cancelled (not cancellable), after her pending one
    rows = (await kari.get("/api/callbacks")).json()["callbacks"]
    assert [(r["id"], r["state"], r["cancellable"]) for r in rows] == [
        (mine, "scheduled", True),
        (for_all, "cancelled", False),
    ]
    # cancelling it again: it is done, not unknown
    resp = await kari.post(f"/api/callbacks/{for_all}/cancel")
    assert resp.status_code == 409 and resp.json()["error"] == "illegal_state"


# --- bad input: a clear refusal naming the field, nothing written --------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"due_at": local(days=-1)}, "due_at", "in the past"),
        ({"due_at": local(days=0, hour=0, minute=0)}, "due_at", "in the past"),
        ({"due_at": local(days=400)}, "due_at", "more than a year ahead"),
        ({"due_at": "tomorrow"}, "due_at", "not a date and time"),
        ({"due_at": local()[:10]}, "due_at", "not a date and time"),  # a date alone
        ({"due_at": "2026-02-30T10:00"}, "due_at", "not a date and time"),
        ({"due_at": "0001-01-01T00:00"}, "due_at", "not a date and time"),
        ({"due_at": ""}, "due_at", "is required"),
        ({}, "due_at", "is required"),
        ({"due_at": 1767225600}, "due_at", "must be text"),
        ({"due_at": local(), "comment": "x" * 4001}, "comment", "longer than 4000"),
        ({"due_at": local(), "comment": "bad\x00byte"}, "comment", "control characters"),
        ({"due_at": local(), "for": "everyone"}, "for", '"me" or "all"'),
        ({"due_at": local(), "contact_id": "7"}, "contact_id", "must be an id"),
        ({"due_at": local(), "contact_id": True}, "contact_id", "must be an id"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(env, body, field, words):
    kari = await client(env, "kari")
    call = await on_call(env, "kari")
    resp = await kari.post(f"/api/calls/{call}/callback", json=body)
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    assert answer["error"] == "invalid" and answer["field"] == field
    assert answer["message"].startswith(f"{field}: ") and words in answer["message"]
    assert callbacks_in_db(env) == [] and contact_status(env, "w1") == "done"


async def test_a_local_time_the_clocks_skip_is_refused(env):
    kari = await client(env, "kari")
    call = await on_call(env, "kari")
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": spring_forward_gap()})
    assert resp.status_code == 400
    assert "does not exist in Europe/Oslo" in resp.json()["message"]
    assert callbacks_in_db(env) == []


async def test_refusals_are_translated(env):
    nora = await client(env, "nora")  # Norwegian; not in the Winter campaign
    call = await on_call(env, "nora")
    resp = await nora.post(f"/api/calls/{call}/callback", json={"due_at": "i morgen"})
    assert resp.status_code == 400
    assert resp.json()["message"] == "due_at: er ikke en dato og et klokkeslett (ÅÅÅÅ-MM-DD TT:MM)"
    resp = await nora.post(f"/api/calls/{call}/callback", json={"due_at": local()})
    assert resp.status_code == 403
    assert resp.json()["message"] == "Du jobber ikke for kampanjen Winter."


# --- authorisation: only the contact on my card, of my campaigns -------------------------


async def test_forged_ids_are_refused_and_nothing_is_written(env):
    kari, ola = await client(env, "kari"), await client(env, "ola")
    call = await on_call(env, "kari")
    ola_call = await on_call(env, "ola", contact="w2")
    ok = {"due_at": local(), "comment": "x"}
    cases = [
        (kari, f"/api/calls/{ola_call}/callback", ok, 404),  # another agent's call
        (kari, f"/api/calls/{call + 1000}/callback", ok, 404),  # made up
        (kari, f"/api/calls/{call}/callback", {**ok, "contact_id": env.contacts["w2"]}, 404),
        (kari, "/api/calls/abc/callback", ok, 400),
        (kari, "/api/calls/0/callback", ok, 400),
        (ola, f"/api/calls/{call}/callback", ok, 404),
    ]
    for c, path, body, status in cases:
        resp = await c.post(path, json=body)
        assert resp.status_code == status, (path, body, resp.text)
        assert set(resp.json()) >= {"error", "message"}
        if "contact_id" not in body:  # the form's facts: the same refusal
            resp = await c.get(path)
            assert resp.status_code == status, (path, resp.text)
    for path in ("/api/callbacks/999/cancel", "/api/callbacks/x/cancel"):
        resp = await kari.post(path)
        assert resp.status_code in (400, 404) and "error" in resp.json()
    assert callbacks_in_db(env) == []
    assert contact_status(env, "w1") == contact_status(env, "w2") == "done"
    # the contact_id the desk shows, when it is the card's, is fine
    resp = await kari.post(
        f"/api/calls/{call}/callback", json={**ok, "contact_id": env.contacts["w1"]}
    )
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("contact", "campaign", "status", "reason"),
    [
        ("inbound", "winter", 409, "illegal_state"),  # the card's contact: an inbound campaign's
        ("loose", "winter", 409, "illegal_state"),  # a contact of no campaign
        (None, "winter", 409, "illegal_state"),  # no contact on the card
        ("other", "other", 403, "not_permitted"),  # a campaign kari does not work for
    ],
)
async def test_only_a_contact_of_my_outbound_campaigns(env, contact, campaign, status, reason):
    kari = await client(env, "kari")
    call = await on_call(env, "kari", contact=contact, campaign=campaign)
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": local()})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == reason and resp.json()["message"]
    assert (await kari.get(f"/api/calls/{call}/callback")).status_code == status
    assert callbacks_in_db(env) == []


async def test_not_before_the_contact_answered_and_not_without_login_or_csrf(env):
    kari = await client(env, "kari")
    call = await on_call(env, "kari", state="connecting")
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": local()})
    assert resp.status_code == 409 and resp.json()["error"] == "illegal_state"
    token = kari.headers.pop("X-CSRF-Token")
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": local()})
    assert resp.status_code == 403 and resp.json()["error"] == "csrf"
    kari.headers["X-CSRF-Token"] = token
    anonymous = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.app), base_url="http://testserver"
    )
    assert (await anonymous.get("/api/callbacks")).status_code == 401
    resp = await anonymous.post(f"/api/calls/{call}/callback", json={"due_at": local()})
    assert resp.status_code in (401, 403)
    assert callbacks_in_db(env) == [] and env.feedback.calls == []


async def test_during_a_dialer_call_the_dialer_is_asked(env):
    """Connected: the contact is being dialed, so the dialer gets the callback (its own
    deferral is tested with the real dialer below); refused input never reaches it."""
    kari = await client(env, "kari")
    call = await on_call(env, "kari", state="connected")
    assert (await kari.get(f"/api/calls/{call}/callback")).json()["deferred"] is True
    resp = await kari.post(f"/api/calls/{call}/callback", json={"due_at": local(days=-1)})
    assert resp.status_code == 400 and env.feedback.calls == []
    when = local(hour=16)
    resp = await kari.post(
        f"/api/calls/{call}/callback", json={"due_at": when, "comment": "c", "for": "all"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["deferred"] is True and resp.json()["callback"]["id"] is None
    assert env.feedback.calls == [(env.ids["kari"], call, utc_of(when), False, "c")]
    assert callbacks_in_db(env) == []


# --- with the real dialer ------------------------------------------------------------------


async def run_dialer(env):
    return asyncio.create_task(env.dialer.run())


until = functools.partial(polling.until, timeout=10.0, every=0.01)


async def card(env, username, state):
    view = await env.d.view(env.ids[username])
    return view.call if view.call and view.call.state == state else None


async def test_scheduled_during_the_call_is_written_when_it_ends(tmp_path):
    env = build(tmp_path, dialer=True)
    env.tel.contacts["+4791000001"] = ("answer", 0.02, None)  # talks until hung up
    kari = await client(env, "kari")
    await env.d.login(env.ids["kari"])
    await env.d.ready(env.ids["kari"])
    task = await run_dialer(env)
    try:
        call = await until(lambda: card(env, "kari", "connected"))
        when = local(hour=14)
        resp = await kari.post(
            f"/api/calls/{call.call_id}/callback",
            json={"due_at": when, "comment": "After the meeting", "for": "me"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["deferred"] is True
        assert callbacks_in_db(env) == []  # not while the call goes on
        assert (await kari.get("/api/callbacks")).json()["callbacks"] == []
        resp = await kari.post(f"/api/calls/{call.call_id}/hangup")
        assert resp.status_code == 200, resp.text
        await until(lambda: not env.dialer.lines)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    c = env.contacts["w1"]
    assert callbacks_in_db(env) == [
        (c, env.ids["kari"], utc_of(when), "After the meeting", "pending", env.ids["kari"])
    ]
    assert contact_status(env, "w1") == "callback"
    (row,) = (await kari.get("/api/callbacks")).json()["callbacks"]
    assert (row["state"], row["comment"], row["for"]) == ("scheduled", "After the meeting", "me")


async def test_scheduled_while_the_call_is_hanging_up_is_not_lost(tmp_path):
    """The contact hung up and the dialer is still ending the call (its end not written):
    the callback must outlive the call's own outcome."""
    env = build(tmp_path, dialer=True)
    env.tel.contacts["+4791000001"] = ("answer", 0.02, 0.1)
    ending = asyncio.Event()
    release = asyncio.Event()

    async def slow_end_call(call_id):
        ending.set()
        await release.wait()

    env.tel.end_call = slow_end_call
    kari = await client(env, "kari")
    await env.d.login(env.ids["kari"])
    await env.d.ready(env.ids["kari"])
    task = await run_dialer(env)
    try:
        call = await until(lambda: card(env, "kari", "connected"))
        await asyncio.wait_for(ending.wait(), 5)
        assert env.dialer.lines[call.call_id].phase == "ending"
        resp = await kari.post(
            f"/api/calls/{call.call_id}/callback",
            json={"due_at": local(hour=12), "comment": "late", "for": "all"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["deferred"] is True
        release.set()
        await until(lambda: not env.dialer.lines)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    ((contact, agent, _due, comment, status, _by),) = callbacks_in_db(env)
    assert (contact, agent, comment, status) == (env.contacts["w1"], None, "late", "pending")
    assert contact_status(env, "w1") == "callback"
    with transaction(env.sessions) as s:
        assert s.scalar(select(func.count()).select_from(m.Call)) == 1
