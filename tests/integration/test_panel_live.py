"""The live panel (F-M1) end to end on the sandbox Asterisk: the product's runtime
in-process (ARI app, distributor, AMI monitor, panel feed, web on uvicorn), SIPp callers
and agent phones, agents using the desktop's JSON API and a supervisor using the panel's
SSE stream and API (tests/panel_client.py) exactly as panel.js does.

* the panel shows agents' states and waiting calls change as calls arrive and are
  answered, with the phones' device state and channels from AMI;
* a supervisor raises a line's priority from the panel and the next routing decision
  follows it (audited with who did it);
* an agent cannot open the panel or call its actions;
* Asterisk restarting: the panel says the AMI view is stale, then live again.

SIPp control ports are pinned inside this instance's own port range (port + 2600), and
the agent phones and caller slots are picked among those whose ports are free: a parallel
session on a neighbouring base port puts its SIPp control ports (its base + 4000 + ...)
right on this instance's phone ports.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from pathlib import Path

import pytest
from agent_client import AgentClient
from panel_client import ApiError, SupervisorClient
from sippkit import caller, off_the_loop, phone
from sqlalchemy import select
from support.polling import until

from asterisk_cube import dialplan as dp
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime

pytestmark = pytest.mark.integration

SUPPORT, VIP = "4721000031", "4721000032"
PASSWORD = "panel-test-pw-1"


def cp(port: int) -> int:
    return port + 2600


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_agents(sandbox, count: int) -> list[int]:
    """Agent numbers (20 down to 1) whose SIPp phone ports are free right now."""
    found = [
        n
        for n in range(20, 0, -1)
        if _udp_free(sandbox.agent_port(n)) and _udp_free(cp(sandbox.agent_port(n)))
    ]
    assert len(found) >= count, (
        f"agent phone ports {sandbox.agent_port(1)}..{sandbox.agent_port(20)} are taken by other "
        "processes (a parallel test session's SIPp control ports?)"
    )
    return found[:count]


def free_slots(sandbox, count: int) -> list[int]:
    found = [
        i for i, port in enumerate(sandbox.carrier_ports) if _udp_free(port) and _udp_free(cp(port))
    ]
    assert len(found) >= count, "no free caller ports"
    return found[:count]


@pytest.fixture
async def cube(sandbox, tmp_path):
    env = {**sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    phones = free_agents(sandbox, 2)  # agent01 uses phone phones[0], agent02 phones[1]
    with transaction(sessions) as s:
        p.add_line(s, SUPPORT, "Support", priority=5)
        p.add_line(s, VIP, "VIP", priority=9)
        for n, ph in zip((1, 2), phones, strict=True):
            p.add_agent(
                s,
                f"agent{n:02d}",
                name=f"Agent {n:02d}",
                endpoint=f"PJSIP/agent{ph:02d}",
                password=PASSWORD,
                lines=[SUPPORT, VIP],
            )
        p.add_agent(s, "boss", name="Boss", role="supervisor", password=PASSWORD)
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    await asyncio.to_thread(dp.install, text, settings)
    runtime = build_runtime(settings, install_signal_handlers=False)
    task = asyncio.create_task(runtime.run())
    url = f"http://127.0.0.1:{settings.web.port}"
    boss = SupervisorClient(url)
    clients = [boss]

    async def ready():
        sup = runtime.state.supervisor
        if task.done():
            await task
        if sup is None or not sup.connected:
            return False
        try:
            if boss.csrf is None:
                await boss.login("boss", PASSWORD)
            state = await boss.panel()
        except Exception:
            return False
        return not state["ami"]["status"]["stale"]

    await until(ready, timeout=20, what="ARI connected and AMI live")

    async def agent(n: int) -> AgentClient:
        client = AgentClient(url)
        clients.append(client)
        await client.login(f"agent{n:02d}", PASSWORD)
        return client

    yield {
        "boss": boss,
        "agent": agent,
        "ids": ids,
        "lines": lines,
        "sessions": sessions,
        "runtime": runtime,
        "phone": lambda n: sandbox.agent_port(phones[n - 1]),
    }
    for c in clients:
        await c.aclose()
    runtime.request_stop("test")
    assert await asyncio.wait_for(task, 15) == 0


def agent_row(state, agent_id):
    return state["agents"][str(agent_id)]


def line_row(state, line_id):
    return state["lines"][str(line_id)]


def calls_of(state, caller_id):
    return [c for c in state["calls"].values() if c["caller"] == caller_id]


async def test_panel_follows_calls_arriving_and_being_answered(cube, sandbox, tmp_path):
    boss, ids, lines = cube["boss"], cube["ids"], cube["lines"]
    a1 = await cube["agent"](1)
    agent_id, support = ids["agent01"], lines[SUPPORT]
    async with boss.panel_events() as panel:
        assert agent_row(panel.state, agent_id)["state"] == "logged_out"
        assert agent_row(panel.state, agent_id)["device"] == "not_inuse"  # from AMI
        await a1.start()
        await a1.choose_lines([support])
        await panel.wait_for(
            lambda s: (
                agent_row(s, agent_id)["state"] == "paused"
                and agent_row(s, agent_id)["lines"] == [support]
            )
        )
        async with off_the_loop(
            phone(
                sandbox,
                cube["phone"](1),
                tmp_path / "p1",
                answer_ms=300,
                control_port=cp(cube["phone"](1)),
            )
        ):
            (slot,) = free_slots(sandbox, 1)
            c = caller(
                sandbox,
                SUPPORT,
                tmp_path / "c1",
                slot=slot,
                caller_id="91230001",
                hold_ms=5000,
                control_port=cp(sandbox.carrier_ports[slot]),
            ).start()
            state = await panel.wait_for(
                lambda s: line_row(s, support)["waiting"] == 1 and calls_of(s, "91230001")
            )
            (call,) = calls_of(state, "91230001")
            assert call["phase"] == "waiting" and call["line_id"] == support
            assert line_row(state, support)["oldest"] is not None
            # Asterisk's own view: the caller's channel is up (answered into the holding bridge)
            await panel.wait_for(
                lambda s: any(ch["caller"] == "91230001" for ch in s["channels"].values())
            )
            await a1.ready()
            state = await panel.wait_for(lambda s: agent_row(s, agent_id)["state"] == "offered")
            assert calls_of(state, "91230001")[0]["phase"] == "offered"
            await a1.accept(call["id"])
            state = await panel.wait_for(
                lambda s: (
                    agent_row(s, agent_id)["state"] == "busy"
                    and calls_of(s, "91230001")
                    and calls_of(s, "91230001")[0]["phase"] == "connected"
                    and agent_row(s, agent_id)["device"] == "inuse"
                    and agent_row(s, agent_id)["channel"] is not None
                )
            )
            row = agent_row(state, agent_id)
            assert row["call_id"] == call["id"] and row["channel"]["state"] == "Up"
            assert line_row(state, support)["waiting"] == 0
            result = await asyncio.to_thread(c.wait, 30)
            assert result.ok, result.summary()
            state = await panel.wait_for(
                lambda s: (
                    not calls_of(s, "91230001")
                    and agent_row(s, agent_id)["state"] in ("ready", "wrap_up")
                    and agent_row(s, agent_id)["device"] == "not_inuse"
                )
            )
        lags = sorted(panel.lags)
        print(
            f"\npanel: {panel.patches} patches, lag p50 "
            f"{statistics.median(lags) * 1000:.1f} ms, max {lags[-1] * 1000:.1f} ms"
        )
        assert lags[-1] < 2.0


async def test_priority_change_from_the_panel_steers_the_next_call(cube, sandbox, tmp_path):
    boss, ids, lines = cube["boss"], cube["ids"], cube["lines"]
    support, vip = lines[SUPPORT], lines[VIP]
    a2 = await cube["agent"](2)
    agent_id = ids["agent02"]
    await a2.start()
    await a2.choose_lines([support, vip])  # paused ("login") while the calls queue up
    async with boss.panel_events() as panel:
        s1, s2 = free_slots(sandbox, 2)
        c_support = caller(
            sandbox,
            SUPPORT,
            tmp_path / "cs",
            caller_id="91230010",
            hold_ms=8000,
            slot=s1,
            control_port=cp(sandbox.carrier_ports[s1]),
        ).start()
        await panel.wait_for(lambda s: line_row(s, support)["waiting"] == 1)
        c_vip = caller(
            sandbox,
            VIP,
            tmp_path / "cv",
            caller_id="91230011",
            hold_ms=8000,
            slot=s2,
            control_port=cp(sandbox.carrier_ports[s2]),
        ).start()
        await panel.wait_for(lambda s: line_row(s, vip)["waiting"] == 1)
        # VIP (9) is ahead of Support (5); the supervisor raises Support above it
        answer = await boss.set_priority(support, 20)
        assert answer["old"] == 5
        await panel.wait_for(lambda s: line_row(s, support)["priority"] == 20)
        await a2.ready()
        async with a2.events() as events:
            view = await events.wait_for(lambda v: v["offer"], timeout=10)
        assert (view["offer"]["caller"], view["offer"]["did"]) == ("91230010", SUPPORT)
        # the desk shows the new priority too
        assert {ln["did"]: ln["priority"] for ln in view["lines"]}[SUPPORT] == 20
        state = await panel.wait_for(lambda s: agent_row(s, agent_id)["state"] == "offered")
        assert calls_of(state, "91230010")[0]["phase"] == "offered"
        # nobody answers: both callers give up (8 s), the offer is withdrawn
        for c in (c_support, c_vip):
            result = await asyncio.to_thread(c.wait, 30)
            assert result.ok, result.summary()
        state = await panel.wait_for(
            lambda s: not s["calls"] and agent_row(s, agent_id)["state"] == "ready", timeout=15
        )
        assert line_row(state, vip)["waiting"] == line_row(state, support)["waiting"] == 0
    with transaction(cube["sessions"]) as s:
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.action == "line_priority")).all()
        assert [(a.actor, a.actor_id, a.target, a.details["new"]) for a in audit] == [
            ("boss", ids["boss"], SUPPORT, 20)
        ]
    assert agent_id in cube["runtime"].state.extras["distributor"].agents


async def test_an_agent_cannot_open_the_panel_or_act(cube):
    lines, ids = cube["lines"], cube["ids"]
    a1 = await cube["agent"](1)
    resp = await a1.request("GET", "/panel", headers={"Accept": "text/html"})
    assert resp.status_code == 403
    assert (await a1.request("GET", "/panel/events")).status_code == 403
    assert (await a1.request("GET", "/api/panel")).status_code == 403
    resp = await a1.request("POST", f"/api/panel/lines/{lines[SUPPORT]}/priority", {"priority": 99})
    assert resp.status_code == 403
    resp = await a1.request("POST", f"/api/panel/agents/{ids['agent02']}/pause", {})
    assert resp.status_code == 403
    state = await cube["boss"].panel()
    assert line_row(state, lines[SUPPORT])["priority"] == 5
    with pytest.raises(ApiError):
        await a1._json("POST", f"/api/panel/agents/{ids['agent01']}/ready", {})


async def test_asterisk_restart_shows_stale_then_live(cube, sandbox):
    boss = cube["boss"]
    async with boss.panel_events() as panel:
        assert panel.state["ami"]["status"]["stale"] is False
        await asyncio.to_thread(sandbox.rx, "core restart now")
        state = await panel.wait_for(lambda s: s["ami"]["status"]["stale"], timeout=10)
        assert state["ami"]["status"]["stale_since"] is not None
        state = await panel.wait_for(lambda s: not s["ami"]["status"]["stale"], timeout=30)
        assert state["ami"]["status"]["connects"] >= 2
    await until(
        lambda: _ari_connected(cube["runtime"]), timeout=30, what="ARI back after the restart"
    )


async def _ari_connected(runtime):
    return runtime.state.supervisor.connected


@pytest.mark.browser
async def test_the_panel_in_chromium_shows_a_call_wait_and_get_answered(cube, sandbox, tmp_path):
    """The proof in a real browser: headless Chromium on the panel while SIPp calls."""
    pytest.importorskip("selenium.webdriver")
    from browserkit import CHROMEDRIVER, CHROMIUM, SHOTS, chrome
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium / chromedriver missing: run ./scripts/setup")
    shots = str(SHOTS)
    browser = await asyncio.to_thread(chrome, tmp_path / "profile")
    url = cube["boss"].http.base_url
    ids, lines = cube["ids"], cube["lines"]
    agent_id, support = ids["agent01"], lines[SUPPORT]
    row = f'#agents-body tr[data-agent="{agent_id}"]'

    def wait_text(css, predicate, timeout=15):
        def check(d):
            return predicate(d.find_element(By.CSS_SELECTOR, css).text)

        WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
            check
        )

    def waiting_call_rows():
        return browser.find_elements(By.CSS_SELECTOR, '#calls-body tr[data-phase="waiting"]')

    def open_panel():
        browser.get(f"{url}/login")
        browser.find_element(By.ID, "username").send_keys("boss")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-btn").click()
        WebDriverWait(browser, 15).until(EC.url_to_be(f"{url}/panel"))  # a supervisor lands here
        browser.get(f"{url}/panel")
        wait_text("#ami-badge", lambda t: t == "Asterisk: live")

    try:
        await asyncio.to_thread(open_panel)
        a1 = await cube["agent"](1)
        await a1.start()
        await a1.choose_lines([support])
        await asyncio.to_thread(wait_text, row + " .state", lambda t: t == "Paused")
        async with off_the_loop(
            phone(
                sandbox,
                cube["phone"](1),
                tmp_path / "p1",
                answer_ms=300,
                control_port=cp(cube["phone"](1)),
            )
        ):
            (slot,) = free_slots(sandbox, 1)
            c = caller(
                sandbox,
                SUPPORT,
                tmp_path / "c1",
                slot=slot,
                caller_id="91239999",
                hold_ms=6000,
                control_port=cp(sandbox.carrier_ports[slot]),
            ).start()
            line = f'#lines-body tr[data-line="{support}"]'
            await asyncio.to_thread(wait_text, line + " .waiting", lambda t: t == "1")
            rows = await asyncio.to_thread(waiting_call_rows)
            assert len(rows) == 1 and "91239999" in rows[0].text
            await asyncio.to_thread(browser.save_screenshot, f"{shots}/panel-live-waiting.png")
            await a1.ready()
            async with a1.events() as events:
                view = await events.wait_for(lambda v: v["offer"], timeout=10)
            await a1.accept(view["offer"]["call_id"])
            await asyncio.to_thread(wait_text, row + " .state", lambda t: t == "On a call")
            await asyncio.to_thread(wait_text, row + " .device", lambda t: t == "In use")
            await asyncio.to_thread(wait_text, line + " .waiting", lambda t: t == "0")
            assert not await asyncio.to_thread(waiting_call_rows)
            await asyncio.to_thread(browser.save_screenshot, f"{shots}/panel-live-answered.png")
            result = await asyncio.to_thread(c.wait, 30)
            assert result.ok, result.summary()
            await asyncio.to_thread(wait_text, "#calls-card", lambda t: "No calls right now." in t)
            await asyncio.to_thread(wait_text, row + " .device", lambda t: t == "Idle")
    finally:
        await asyncio.to_thread(browser.quit)
