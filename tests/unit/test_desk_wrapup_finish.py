"""``POST /api/wrapup/finish`` against the real distributor (issue #11 item 4): finishing
wrap-up is legal only in wrap-up. A paused or ready agent is refused (409) and stays as it
was, in memory and in the database."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import make_accounts, make_app, make_settings

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class NoPhone:
    async def hangup(self, channel_id):
        pass

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here


@pytest.fixture
async def env(tmp_path):
    sessions, ids = make_accounts(tmp_path)
    with transaction(sessions) as s:
        p.add_campaign(s, "Winter", mode="power", wrap_up=60)
        campaign_id = s.scalar(select(m.Campaign.id))
    hub = EventHub()
    d = Distributor(sessions, hub, NoPhone())
    d.load()
    app = make_app(make_settings(tmp_path), d, hub, sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        resp = await c.post("/api/login", json={"username": "kari", "password": "kari-secret-1"})
        c.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        yield c, d, sessions, ids["kari"], campaign_id
    await d.close()


def state_log_rows(sessions, agent_id):
    with transaction(sessions) as s:
        return s.scalar(
            select(func.count())
            .select_from(m.AgentStateLog)
            .where(m.AgentStateLog.agent_id == agent_id)
        )


async def test_finish_wrap_up_is_refused_while_paused_or_ready(env):
    c, d, sessions, kari, _ = env
    view = (await c.post("/api/start")).json()["view"]
    assert view["state"] == "paused"  # work starts paused ("login")
    d.journal.flush()
    before = state_log_rows(sessions, kari)
    resp = await c.post("/api/wrapup/finish")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "illegal_state"
    assert (await c.get("/api/me")).json()["state"] == "paused"
    d.journal.flush()
    assert state_log_rows(sessions, kari) == before
    await c.post("/api/ready")
    resp = await c.post("/api/wrapup/finish")
    assert resp.status_code == 409 and resp.json()["error"] == "illegal_state"
    assert (await c.get("/api/me")).json()["state"] == "ready"


async def test_finish_wrap_up_ends_the_wrap_up(env):
    c, d, sessions, kari, campaign_id = env
    await c.post("/api/start")
    await c.post("/api/ready")
    with transaction(sessions) as s:
        row = m.Call(
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=campaign_id,
            started_at=d.now(),
        )
        s.add(row)
        s.flush()
        call_id = row.id
    d.outbound_started(
        call_id=call_id,
        agent_id=kari,
        campaign_id=campaign_id,
        contact_id=None,
        number="+4791000001",
        channel_id="ch-1",
        mode="power",
        connected=True,
    )
    d.outbound_ended(call_id)
    assert (await c.get("/api/me")).json()["state"] == "wrap_up"
    view = (await c.post("/api/wrapup/finish")).json()["view"]
    assert view["state"] == "ready"
