"""The live panel (F-M1): its feed (state from the distributor + AMI + campaigns, diffs,
coalescing, slow clients), the SSE stream, and the supervisor actions over HTTP with
roles, CSRF, validation and the audit log. Real distributor on SQLite; AMI from events."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import make_accounts, make_settings
from panel_client import ApiError, SupervisorClient

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ami.monitor import AmiMonitor
from asterisk_cube.config import AmiSettings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import supervision as svc
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.panel import Panel
from asterisk_cube.web.panel_feed import CampaignsChanged, PanelFeed

PASSWORDS = {"kari": "kari-secret-1", "siri": "siri-secret-1", "adam": "adam-secret-1"}


class World(SimpleNamespace):
    pass


@pytest.fixture
async def world(tmp_path):
    sessions, ids = make_accounts(tmp_path)
    with transaction(sessions) as s:
        p.add_line(s, "4721000001", "Support", priority=1)
        p.add_line(s, "4721000002", "Sales", priority=5)
        p.add_line(s, "4721000003", "Secret", priority=0)
        for name in ("kari", "siri"):
            agent = s.get(m.Agent, ids[name])
            agent.endpoint = f"PJSIP/{name}"
        p.grant_lines(s, "kari", ["4721000001", "4721000002"])
        camp = p.add_campaign(s, "Autumn", mode="power", caller_id="4721000009")
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
        campaign_id = camp.id
    hub = EventHub()
    desk = Distributor(sessions, hub)
    desk.load()
    ami = AmiMonitor(AmiSettings(), hub)

    def campaigns():
        with transaction(sessions) as s:
            return svc.campaign_pace(s)

    feed = PanelFeed(hub, desk, ami, campaigns=campaigns, min_interval=0.0)
    yield World(
        sessions=sessions,
        ids=ids,
        lines=lines,
        campaign_id=campaign_id,
        hub=hub,
        desk=desk,
        ami=ami,
        feed=feed,
        tmp=tmp_path,
    )
    await desk.close()


def ami_event(**fields):
    return fields


# ------------------------------------------------------------------------ the feed


async def test_state_merges_distributor_ami_and_campaigns(world):
    w = world
    kari = w.ids["kari"]
    await w.desk.login(kari)
    await w.desk.choose_lines(kari, [w.lines["4721000001"]])
    await w.desk.ready(kari)
    w.ami.on_event(ami_event(Event="DeviceStateChange", Device="PJSIP/kari", State="NOT_INUSE"))
    w.desk.call_arrived("ch-1", w.lines["4721000002"], "+4791000001")
    w.feed.campaigns = await asyncio.to_thread(w.feed.campaigns_source)
    state = w.feed.build()
    agent = state["agents"][str(kari)]
    assert (agent["state"], agent["device"], agent["lines"]) == (
        "ready",
        "not_inuse",
        [w.lines["4721000001"]],
    )
    assert agent["since"] is not None and agent["permitted"] == sorted(
        [w.lines["4721000001"], w.lines["4721000002"]]
    )
    assert state["agents"][str(w.ids["siri"])]["state"] == "logged_out"
    sales = state["lines"][str(w.lines["4721000002"])]
    assert (sales["waiting"], sales["priority"], sales["staffed"]) == (1, 5, 0)
    assert sales["oldest"] is not None
    (call,) = state["calls"].values()
    assert (call["caller"], call["phase"], call["direction"]) == (
        "+4791000001",
        "waiting",
        "inbound",
    )
    camp = state["campaigns"][str(w.campaign_id)]
    assert (camp["name"], camp["status"], camp["abandon_rate"], camp["left"]) == (
        "Autumn",
        "stopped",
        0.0,
        0,
    )
    assert state["ami"]["status"]["stale"] is True  # never connected in this test


async def test_a_withheld_callers_number_never_shows_on_the_panel(world):
    """Privacy: id: Asterisk knows the number (P-Asserted-Identity) and AMI reports it, but
    not the presentation. The Stasis app made the caller anonymous; the panel masks the AMI
    channels of that call (the caller's and the agent's leg in its bridge), no other."""
    w = world
    kari = w.ids["kari"]
    w.desk.call_arrived("hidden", w.lines["4721000002"], "anonymous")
    w.desk.call_arrived("shown", w.lines["4721000002"], "+4791000002")
    channel = dict(Event="Newchannel", ChannelStateDesc="Up", Context="cube-inbound")
    w.ami.on_event(
        ami_event(
            **channel,
            Uniqueid="hidden",
            Channel="PJSIP/carrier-1",
            Linkedid="hidden",
            CallerIDNum="4791000001",
            Exten="4721000002",
        )
    )
    w.ami.on_event(
        ami_event(
            **channel,
            Uniqueid="shown",
            Channel="PJSIP/carrier-2",
            Linkedid="shown",
            CallerIDNum="4791000002",
            Exten="4721000002",
        )
    )
    w.ami.on_event(
        ami_event(
            **channel,
            Uniqueid="leg",
            Channel="PJSIP/kari-3",
            Linkedid="leg",
            CallerIDNum="kari",
            ConnectedLineNum="4791000001",
        )
    )
    for uid in ("hidden", "leg"):
        w.ami.on_event(ami_event(Event="BridgeEnter", BridgeUniqueid="cube-call-1", Uniqueid=uid))
    w.desk.agents[kari].endpoint = "PJSIP/kari"
    state = w.feed.build()
    shown = {uid: (ch["caller"], ch["connected"]) for uid, ch in state["channels"].items()}
    assert shown == {
        "hidden": ("anonymous", "anonymous"),
        "leg": ("anonymous", "anonymous"),
        "shown": ("4791000002", ""),
    }
    assert state["agents"][str(kari)]["channel"]["connected"] == "anonymous"
    assert "4791000001" not in json.dumps(state)
    assert sorted(c["caller"] for c in state["calls"].values()) == ["+4791000002", "anonymous"]


async def test_campaign_row_carries_the_dialers_live_figures(world):
    """F-M1 / issue 6: lines dialing, agents, pace and the learned answer rate of the
    campaigns this process dials for, beside the day's abandon rate against the cap."""
    w = world
    live = {
        "campaign_id": w.campaign_id,
        "lines": 5,
        "ringing": 3,
        "waiting": 1,
        "pacing": "predictive",
        "nothing_to_dial": False,
        "agents": 4,
        "ready": 1,
        "dials_per_minute": 42.0,
        "answer_rate": 0.31,
        "abandon_rate": 0.01,  # the dialer's own; the panel shows the database's
    }
    w.feed.dialer_source = lambda: [live, {**live, "campaign_id": 9999}]  # 9999: not ours
    w.feed.campaigns = await asyncio.to_thread(w.feed.campaigns_source)
    camp = w.feed.build()["campaigns"][str(w.campaign_id)]
    assert camp["live"] == {
        "lines": 5,
        "ringing": 3,
        "waiting": 1,
        "pacing": "predictive",
        "nothing_to_dial": False,
        "agents": 4,
        "ready": 1,
        "dials_per_minute": 42.0,
        "answer_rate": 0.31,
    }
    assert (camp["abandon_rate"], camp["abandon_cap"]) == (0.0, 0.03)
    assert set(w.feed.build()["campaigns"]) == {str(w.campaign_id)}

    def broken():
        raise RuntimeError("dialer bug")

    w.feed.dialer_source = broken  # the panel keeps the database's figures
    camp = w.feed.build()["campaigns"][str(w.campaign_id)]
    assert "live" not in camp and camp["name"] == "Autumn"


def test_pacing_reasons_have_words():
    from asterisk_cube.core import pacing as pc
    from asterisk_cube.web.panel import PACING_REASONS, panel_words

    reasons = {"power", "predictive", "conservative", "learning", "idle"}
    assert set(PACING_REASONS) == reasons
    est = pc.default_estimates()
    for mode, ready in ((pc.PacingMode.POWER, 1), (pc.PacingMode.PREDICTIVE, 1)):
        decision = pc.decide(pc.PacingState(est, pc.PacingConfig(mode=mode), ready_agents=ready))
        assert decision.reason in reasons
    assert pc.decide(pc.PacingState(est)).reason in reasons  # nobody: idle
    # a cold predictive campaign paces as power until it has answers of its own
    assert pc.decide(pc.PacingState(est, ready_agents=1)).reason == "learning"
    assert set(panel_words()["pacing"]) == reasons


async def test_patches_carry_only_what_changed(world):
    w = world
    w.feed.rebuild()
    assert w.feed.rebuild() is None  # nothing changed: no patch
    call_id = w.desk.call_arrived("ch-1", w.lines["4721000001"], "+4791000001")
    patch = w.feed.rebuild()
    assert set(patch["set"]) == {"lines", "calls"}
    assert list(patch["set"]["lines"]) == [str(w.lines["4721000001"])]
    assert patch["del"] == {}
    w.desk.caller_left("ch-1")
    patch = w.feed.rebuild()
    assert patch["del"] == {"calls": [str(call_id)]}
    assert patch["set"]["lines"][str(w.lines["4721000001"])]["waiting"] == 0


async def _message(client, timeout=2.0):
    text = await client.next(timeout=timeout)
    kind = text.split("\n", 1)[0].removeprefix("event: ")
    return kind, json.loads(text.split("data: ", 1)[1])


async def test_run_pushes_snapshot_then_coalesced_patches(world):
    w = world
    w.feed.min_interval = 0.05
    task = asyncio.create_task(w.feed.run())
    await asyncio.sleep(0)
    client = w.feed.subscribe()
    try:
        kind, snap = await _message(client)
        assert kind == "snapshot" and snap["seq"] == w.feed.seq
        assert set(snap) >= {"agents", "lines", "calls", "channels", "campaigns", "ami", "now"}
        for i in range(20):  # a burst: 20 callers within a few ms
            w.desk.call_arrived(f"ch-{i}", w.lines["4721000001"], f"+479100{i:04d}")
        seen = 0
        patches = 0
        while seen < 20:
            kind, patch = await _message(client)
            assert kind == "patch" and patch["ts"] <= patch["now"]
            patches += 1
            seen = (
                patch["set"]
                .get("lines", {})
                .get(str(w.lines["4721000001"]), {})
                .get("waiting", seen)
            )
        assert patches <= 3  # coalesced, not one message per event
        w.ami.on_event(ami_event(Event="DeviceStateChange", Device="PJSIP/kari", State="RINGING"))
        kind, patch = await _message(client)
        assert patch["set"]["agents"][str(w.ids["kari"])]["device"] == "ringing"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await client.next() is None  # the feed closed its clients


async def test_a_slow_client_gets_a_fresh_snapshot_instead_of_a_backlog(world):
    w = world
    task = asyncio.create_task(w.feed.run())
    await asyncio.sleep(0)
    client = w.feed.subscribe(maxsize=2)
    try:
        await _message(client)
        for i in range(6):  # the client reads nothing meanwhile
            w.desk.call_arrived(f"ch-{i}", w.lines["4721000002"], f"+47920000{i}")
            await asyncio.sleep(0.01)
        assert client.resyncs >= 1
        kind, snap = await _message(client)
        assert kind == "snapshot"
        assert snap["lines"][str(w.lines["4721000002"])]["waiting"] == 6
        assert client.queue.empty() or (await _message(client))[1]["seq"] > snap["seq"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_campaign_figures_refresh_while_watched(world):
    w = world
    w.feed.campaign_interval = 0.05
    sub = w.hub.subscribe(CampaignsChanged)
    task = asyncio.create_task(w.feed.run())
    await asyncio.sleep(0.1)
    assert sub.get_nowait() is None  # nobody watches: no DB reads
    client = w.feed.subscribe()
    try:
        await _message(client)
        _kind, patch = await _message(client)
        assert patch["set"]["campaigns"][str(w.campaign_id)]["status"] == "stopped"
        with transaction(w.sessions) as s:
            s.get(m.Campaign, w.campaign_id).status = m.CampaignStatus.RUNNING
        _kind, patch = await _message(client)
        assert patch["set"]["campaigns"][str(w.campaign_id)]["status"] == "running"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_campaign_pace_counts_today_and_the_cap(world):
    w = world
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    with transaction(w.sessions) as s:
        contact = m.Contact(campaign_id=w.campaign_id, phone="+4790000001")
        s.add_all([contact, m.Contact(campaign_id=w.campaign_id, phone="+4790000002")])
        s.flush()
        results = [m.CallState.ENDED] * 18 + [m.CallState.ABANDONED] * 2 + [m.CallState.NO_ANSWER]
        for result in results:
            s.add(
                m.ContactAttempt(
                    contact_id=contact.id,
                    campaign_id=w.campaign_id,
                    started_at=now - dt.timedelta(hours=1),
                    result=result,
                )
            )
        s.add(  # yesterday (Oslo time) does not count
            m.ContactAttempt(
                contact_id=contact.id,
                campaign_id=w.campaign_id,
                started_at=dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.UTC),
                result=m.CallState.ABANDONED,
            )
        )
        s.add(
            m.Call(
                direction=m.Direction.OUTBOUND,
                kind=m.CallKind.POWER,
                state=m.CallState.DIALING,
                campaign_id=w.campaign_id,
            )
        )
        (row,) = svc.campaign_pace(s, now)
    assert (row["attempts"], row["connects"], row["abandoned"], row["answered"]) == (21, 18, 2, 20)
    assert row["abandon_rate"] == 0.1 and row["over_cap"] is True and row["abandon_cap"] == 0.03
    assert (row["dialing"], row["connected"], row["left"]) == (1, 0, 2)
    assert row["since"] == "2026-11-22T23:00:00+00:00"  # midnight in Europe/Oslo


# ------------------------------------------------------------------------ over HTTP


@pytest.fixture
async def http(world):
    w = world
    settings = make_settings(w.tmp)
    panel = Panel(w.feed, w.desk, w.sessions)
    mount = desktop_mount(settings, w.desk, w.hub, w.sessions, extra_routes=panel.routes())
    app = create_app(settings, SimpleNamespace(hub=w.hub, web=None), extra_routes=[mount])
    clients = []

    async def client(username=None):
        c = SupervisorClient("http://panel.test")
        await c.http.aclose()
        c.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://panel.test",
            headers={"Accept": "application/json"},
        )
        clients.append(c)
        if username:
            await c.login(username, PASSWORDS[username])
        return c

    yield client
    for c in clients:
        await c.aclose()


def audit_rows(w):
    with transaction(w.sessions) as s:
        return [
            (r.actor, r.actor_id, r.action, r.target, r.details)
            for r in s.scalars(select(m.AuditLog).order_by(m.AuditLog.id))
        ]


async def test_agents_and_strangers_are_refused(world, http):
    w = world
    agent = await http("kari")
    line = w.lines["4721000001"]
    resp = await agent.request("GET", "/panel", headers={"Accept": "text/html"})
    assert resp.status_code == 403 and "text/html" in resp.headers["content-type"]
    for method, path, body in [
        ("GET", "/api/panel", None),
        ("GET", "/panel/events", None),
        ("POST", f"/api/panel/lines/{line}/priority", {"priority": 9}),
        ("POST", f"/api/panel/agents/{w.ids['kari']}/lines", {"line_ids": [line]}),
        ("POST", f"/api/panel/agents/{w.ids['kari']}/pause", {}),
        ("POST", f"/api/panel/agents/{w.ids['kari']}/ready", {}),
        ("POST", f"/api/panel/campaigns/{w.campaign_id}/status", {"status": "running"}),
    ]:
        resp = await agent.request(method, path, body)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"] == "forbidden"
    stranger = await http()
    assert (await stranger.request("GET", "/api/panel")).status_code == 401
    resp = await stranger.request("GET", "/panel", headers={"Accept": "text/html"})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert audit_rows(w) == []
    assert w.desk.line_priorities[line] == 1


async def test_supervisor_page_and_state(world, http):
    w = world
    sup = await http("siri")
    resp = await sup.request("GET", "/panel", headers={"Accept": "text/html"})
    assert resp.status_code == 200 and 'id="panel-data"' in resp.text
    assert "Content-Security-Policy" in resp.headers
    data = json.loads(resp.text.split('id="panel-data">', 1)[1].split("</script>", 1)[0])
    assert data["pause_reasons"][0][0] == "supervisor" and data["csrf"]
    assert data["words"]["devices"]["ringing"] == "Ringing"
    state = await sup.panel()
    assert state["lines"][str(w.lines["4721000002"])]["name"] == "Sales"
    assert state["agents"][str(w.ids["kari"])]["username"] == "kari"
    resp = await sup.request("GET", "/panel/static/panel.js")
    assert resp.status_code == 200


async def test_api_state_has_campaigns_without_any_sse_client(world, http):
    """Issue #14 item 3: the campaign figures were only read while a browser held
    /panel/events open; GET /api/panel alone returned no campaigns."""
    w = world
    runner = asyncio.create_task(w.feed.run())
    try:
        sup = await http("siri")
        state = await sup.panel()
        assert state["campaigns"][str(w.campaign_id)]["name"] == "Autumn"
        with transaction(w.sessions) as s:  # changed elsewhere (the CLI, another node)
            s.get(m.Campaign, w.campaign_id).status = m.CampaignStatus.PAUSED
        w.feed.campaign_interval = 0.0  # figures older than this are read again
        state = await sup.panel()
        assert state["campaigns"][str(w.campaign_id)]["status"] == "paused"
        assert not w.feed.clients
    finally:
        runner.cancel()


async def test_priority_change_is_audited_and_routes_the_next_call(world, http):
    w = world
    sup = await http("siri")
    support, sales = w.lines["4721000001"], w.lines["4721000002"]
    # two calls wait: Sales (priority 5) would be served first
    sales_call = w.desk.call_arrived("ch-sales", sales, "+4791000002")
    support_call = w.desk.call_arrived("ch-support", support, "+4791000001")
    answer = await sup.set_priority(support, 50)
    assert answer == {"ok": True, "line_id": support, "old": 1, "priority": 50}
    with transaction(w.sessions) as s:
        assert s.get(m.Line, support).priority == 50
    assert audit_rows(w) == [
        (
            "siri",
            w.ids["siri"],
            "line_priority",
            "4721000001",
            {"line_id": support, "old": 1, "new": 50},
        ),
    ]
    kari = w.ids["kari"]
    await w.desk.login(kari)
    await w.desk.choose_lines(kari, [support, sales])
    await w.desk.ready(kari)
    assert (await w.desk.view(kari)).offer.call_id == support_call
    assert sales_call in w.desk.calls


async def test_bad_input_and_unknown_ids(world, http):
    w = world
    sup = await http("siri")
    line = w.lines["4721000001"]
    for bad in ("9", 1.5, True, 10_000, None):
        with pytest.raises(ApiError) as err:
            await sup.set_priority(line, bad)
        assert (err.value.status, err.value.field) == (400, "priority"), bad
    with pytest.raises(ApiError) as err:
        await sup.set_priority(999, 3)
    assert err.value.status == 404
    resp = await sup.request(
        "POST",
        f"/api/panel/lines/{line}/priority",
        None,
        content=b"priority=3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code in (403, 415)  # no CSRF header in a form post, or not JSON
    no_csrf = await sup.request(
        "POST",
        f"/api/panel/lines/{line}/priority",
        {"priority": 3},
        headers={"X-CSRF-Token": "forged"},
    )
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf"
    with pytest.raises(ApiError) as err:
        await sup.campaign_status(w.campaign_id, "exploding")
    assert (err.value.status, err.value.field) == (400, "status")
    with pytest.raises(ApiError) as err:
        await sup.campaign_status(4242, "running")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        await sup.pause_agent(w.ids["kari"], "no_answer")  # a system reason not offered
    assert (err.value.status, err.value.field) == (400, "reason")
    assert audit_rows(w) == []


async def test_moving_an_agent_between_lines(world, http):
    w = world
    sup = await http("adam")  # admins may too
    kari = w.ids["kari"]
    support, sales, secret = (w.lines[d] for d in ("4721000001", "4721000002", "4721000003"))
    await w.desk.login(kari)
    await w.desk.choose_lines(kari, [support])
    await sup.move_agent(kari, [sales])
    assert w.desk.agents[kari].chosen == frozenset({sales})
    with pytest.raises(ApiError) as err:
        await sup.move_agent(kari, [secret])  # not permitted to kari by the admin setup
    assert err.value.status == 403
    assert w.desk.agents[kari].chosen == frozenset({sales})
    (row,) = audit_rows(w)
    assert row == (
        "adam",
        w.ids["adam"],
        "agent_lines",
        "kari",
        {"agent_id": kari, "old": [support], "new": [sales]},
    )


async def test_pause_and_unpause(world, http):
    w = world
    sup = await http("siri")
    kari = w.ids["kari"]
    with pytest.raises(ApiError) as err:
        await sup.pause_agent(kari)  # logged out: nothing to pause
    assert err.value.status == 409
    await w.desk.login(kari)
    await w.desk.ready(kari)
    await sup.pause_agent(kari)
    view = await w.desk.view(kari)
    assert (view.state, view.pause_reason) == ("paused", "supervisor")
    await sup.unpause_agent(kari)
    assert (await w.desk.view(kari)).state == "ready"
    with pytest.raises(ApiError) as err:
        await sup.unpause_agent(kari)  # not paused
    assert err.value.status == 409
    await sup.pause_agent(kari, "lunch")
    assert (await w.desk.view(kari)).pause_reason == "lunch"
    actions = [(a, d.get("reason")) for _u, _i, a, _t, d in audit_rows(w)]
    assert actions == [
        ("agent_pause", "supervisor"),
        ("agent_unpause", "supervisor"),
        ("agent_pause", "lunch"),
    ]


async def test_campaign_start_pause_stop(world, http):
    w = world
    sup = await http("siri")
    for status in ("running", "paused", "stopped"):
        answer = await sup.campaign_status(w.campaign_id, status)
        assert answer["status"] == status
        with transaction(w.sessions) as s:
            assert s.get(m.Campaign, w.campaign_id).status.value == status
    rows = audit_rows(w)
    assert [(r[0], r[1], r[2], r[3], r[4]["new"]) for r in rows] == [
        ("siri", w.ids["siri"], "campaign_status", "Autumn", "running"),
        ("siri", w.ids["siri"], "campaign_status", "Autumn", "paused"),
        ("siri", w.ids["siri"], "campaign_status", "Autumn", "stopped"),
    ]


async def test_stream_sends_the_snapshot_first_and_ends_when_the_feed_closes(world):
    w = world
    panel = Panel(w.feed, w.desk, w.sessions, heartbeat=60)
    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(cube=SimpleNamespace(web=None)))
    )
    gen = panel.stream(request)
    assert (await anext(gen)).startswith("retry:")
    first = await anext(gen)
    assert first.startswith("event: snapshot\n")
    assert len(w.feed.clients) == 1
    w.feed.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(gen), 3)
    assert not w.feed.clients


async def test_a_failing_rebuild_is_logged_and_the_feed_goes_on(world):
    w = world
    task = asyncio.create_task(w.feed.run())
    await asyncio.sleep(0)
    client = w.feed.subscribe()
    await _message(client)
    real = w.desk.panel_snapshot
    w.desk.panel_snapshot = lambda: 1 / 0
    try:
        w.desk.call_arrived("ch-x", w.lines["4721000001"], "+4791000009")
        await asyncio.sleep(0.1)
        assert not task.done()
        w.desk.panel_snapshot = real
        w.desk.caller_left("ch-x")
        kind, _patch = await _message(client)
        assert kind == "patch"
    finally:
        w.desk.panel_snapshot = real
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
