"""Issue #12 item 8: the desk's contact search is scoped and takes its text literally.

``GET /api/contacts?q=%%`` used to list every campaign's contacts to any agent: LIKE
wildcards were not escaped and the search was not limited to the agent's campaigns.
Now an agent finds the contacts of the outbound campaigns it works for (skill), of the
hotlines of its lines, and contacts of no campaign (docs/desktop.md); ``%``, ``_`` and
``\\`` match themselves. Driven through the web API in front of the real distributor.
"""

from __future__ import annotations

import asyncio
import threading
import warnings

import pytest
from sqlalchemy import select
from support.fakes import FakeTelephony as Telephony

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.config import Settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CONTACTS = {  # name: campaign (None: no campaign)
    "Anna Winter": "Winter",
    "Per_Cent 50% off": "Winter",
    "Sam Summer": "Summer",
    "Hanne Hotline": "Hot",
    "Nils Service": None,
}


KARI = ("kari", "kari-secret-1")
OLA = ("ola", "ola-secret-12")


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_campaign(s, "Winter", mode="preview", skill="sales")
        p.add_campaign(s, "Summer", mode="preview", skill="support")
        p.add_campaign(s, "Hot", direction="inbound")
        p.add_line(s, "100", "Service", priority=1)
        p.add_line(s, "300", "Hotline", priority=5, campaign="Hot")
        for user, password, skill, line in ((*KARI, "sales", "100"), (*OLA, "support", "300")):
            p.add_agent(
                s, user, endpoint=f"PJSIP/{user}", password=password, skills=[skill], lines=[line]
            )
        campaigns = {cp.name: cp.id for cp in s.scalars(select(m.Campaign))}
        for i, (name, campaign) in enumerate(CONTACTS.items()):
            s.add(
                m.Contact(
                    name=name,
                    phone=f"+479100000{i}",
                    campaign_id=campaigns[campaign] if campaign else None,
                )
            )
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        contact_ids = {ct.name: ct.id for ct in s.scalars(select(m.Contact))}
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    return sessions, ids, contact_ids, lines, tmp_path


@pytest.fixture
def desk(world):
    sessions, *_rest, tmp_path = world
    hub = EventHub()
    distributor = Distributor(sessions, hub, Telephony())
    distributor.load()
    settings = Settings(data_dir=tmp_path)
    app = create_app(
        settings, object(), extra_routes=[desktop_mount(settings, distributor, hub, sessions)]
    )
    return distributor, app


def search(app, username, password, q):
    with TestClient(app) as client:
        resp = client.post("/api/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        resp = client.get("/api/contacts", params={"q": q})
        assert resp.status_code == 200, resp.text
        return sorted(ct["name"] for ct in resp.json()["contacts"])


@pytest.mark.parametrize("q", ["%%", "__", "%_", "\\%"])
def test_wildcards_match_only_themselves(desk, q):
    _distributor, app = desk
    assert search(app, *KARI, q) == []


def test_a_literal_percent_and_underscore_still_find_their_contact(desk):
    _distributor, app = desk
    assert search(app, *KARI, "50%") == ["Per_Cent 50% off"]
    assert search(app, *KARI, "r_c") == ["Per_Cent 50% off"]


def test_search_is_scoped_to_the_agents_campaigns_and_lines(desk):
    _distributor, app = desk
    # kari: Winter by skill, line 100 (no campaign)
    assert search(app, *KARI, "Winter") == ["Anna Winter"]
    assert search(app, *KARI, "Summer") == []  # another skill's campaign
    assert search(app, *KARI, "Hotline") == []  # a hotline not on her lines
    assert search(app, *KARI, "Nils") == ["Nils Service"]  # no campaign: everybody's
    # ola: Summer by skill, the hotline of line 300
    assert search(app, *OLA, "Summer") == ["Sam Summer"]
    assert search(app, *OLA, "Hotline") == ["Hanne Hotline"]
    assert search(app, *OLA, "Winter") == []
    assert search(app, *OLA, "+4791000001") == []  # by number too: Winter's
    assert search(app, *OLA, "+4791000002") == ["Sam Summer"]


async def test_opening_a_contact_outside_the_scope_is_refused(world, desk):
    _sessions, ids, contact_ids, lines, _ = world
    distributor, _app = desk
    kari = ids["kari"]
    await distributor.login(kari)
    await distributor.choose_lines(kari, [lines["100"]])
    await distributor.ready(kari)
    caller = "+4791000002"  # Sam Summer (not kari's campaign) calls the service line
    call_id = distributor.call_arrived("ch-1", lines["100"], caller)
    await distributor.accept(kari, call_id)
    for _ in range(5):
        await asyncio.sleep(0)
    with pytest.raises(c.Refused) as refused:
        await distributor.attach_contact(kari, call_id, contact_ids["Hanne Hotline"])
    assert refused.value.reason == c.NOT_FOUND
    await distributor.attach_contact(kari, call_id, contact_ids["Anna Winter"])  # her campaign
    await distributor.attach_contact(kari, call_id, contact_ids["Sam Summer"])  # the caller
    await distributor.close()


async def test_search_attach_and_create_run_off_the_event_loop(world, desk):
    """Issue #13: the search (an ILIKE over the contacts), opening and creating a contact
    run in a worker thread, not on the event loop that serves the calls."""
    from sqlalchemy import event

    _sessions, ids, contact_ids, lines, _ = world
    distributor, _app = desk
    kari = ids["kari"]
    await distributor.login(kari)
    await distributor.choose_lines(kari, [lines["100"]])
    await distributor.ready(kari)
    call_id = distributor.call_arrived("ch-1", lines["100"], "+4791000002")
    await distributor.accept(kari, call_id)
    for _ in range(5):
        await asyncio.sleep(0)
    seen: list[tuple[str, bool]] = []  # (statement, on the loop's thread)
    loop_thread = threading.get_ident()

    def record(conn, cursor, statement, params, context, executemany):
        text = " ".join(statement.split()).upper()
        if " LIKE " in text or "INTO CONTACTS" in text or "UPDATE CALLS SET CONTACT_ID" in text:
            seen.append((text[:40], threading.get_ident() == loop_thread))

    engine = distributor.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = await distributor.search_contacts(kari, "Winter")
        await distributor.attach_contact(kari, call_id, contact_ids["Anna Winter"])
        made = await distributor.create_contact(kari, call_id, "Eva Ny", "", "", "")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [ct.name for ct in found] == ["Anna Winter"]
    assert made.name == "Eva Ny" and distributor.calls[call_id].contact_id == made.contact_id
    kinds = {statement.split()[0] for statement, _ in seen}
    assert kinds == {"SELECT", "UPDATE", "INSERT"}, seen
    assert not [statement for statement, on_loop in seen if on_loop], seen
    await distributor.close()
