"""The live panel in real headless Chromium (Debian's chromium + chromedriver, Selenium)
against uvicorn serving the panel around a real distributor on SQLite (no Asterisk; the
AMI monitor is fed by hand): pushed agent states, a waiting call appearing and
disappearing, the stale-AMI banner, supervisor actions from the page (priority, pause,
unpause, staffing, campaign), Norwegian, and an agent refused. Screenshots go to
$DESK_SCREENSHOTS (default /tmp). The same panel against the sandbox Asterisk with SIPp
callers: tests/integration/test_panel_browser.py."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import browserkit
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.panel import LivePanel
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("DESK_SCREENSHOTS", "/tmp"))

webdriver = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium / chromedriver not installed", allow_module_level=True)

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def make_browser(profile: Path, lang: str = "en-GB"):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,1100",
        f"--lang={lang}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LivePanel(tmp_path_factory.mktemp("panel")).start()
    yield server
    server.stop()


@pytest.fixture
def browser(tmp_path):
    driver = make_browser(tmp_path / "profile")
    yield driver
    driver.quit()


def wait(driver, timeout=10):
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def log_in(driver, live, username, password, then="/panel"):
    browserkit.log_in(driver, live.url, username, password)  # desk or panel
    driver.get(live.url + then)


def test_an_agent_gets_a_refusal(browser, live):
    log_in(browser, live, "kari", "kari-secret-1")
    assert "Your role does not give access to this page." in browser.page_source
    assert not browser.find_elements(By.ID, "panel-data")


def test_supervisor_watches_and_acts(browser, live):
    desk, ids, lines = live.desk, live.ids, live.lines
    support, sales = lines["4721000001"], lines["4721000002"]
    kari = ids["kari"]
    live.call(desk.login, kari)
    live.call(desk.choose_lines, kari, [support])
    log_in(browser, live, "siri", "siri-secret-1")
    row = f'#agents-body tr[data-agent="{kari}"]'
    wait(browser).until(lambda d: text_of(d, row + " .state") == "Paused")
    assert text_of(browser, row + " .reason") == "Starting work"
    # AMI never connected: the stale banner says so
    wait(browser).until(EC.visibility_of_element_located((By.ID, "ami-stale")))
    live.call(live.ami_up)
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "ami-stale")))
    assert browser.find_element(By.ID, "ami-badge").text == "Asterisk: live"
    live.call(
        live.ami.on_event,
        {"Event": "DeviceStateChange", "Device": "PJSIP/kari", "State": "NOT_INUSE"},
    )
    wait(browser).until(lambda d: text_of(d, row + " .device") == "Idle")

    # a call arrives on Sales (nobody serves it): it appears, waiting, and the line counts it
    call = live.call(desk.call_arrived, "ch-1", sales, "+4791112222")
    call_row = f'#calls-body tr[data-call="{call}"]'
    wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, call_row)))
    assert text_of(browser, call_row + " .caller") == "+4791112222"
    assert text_of(browser, call_row + " .phase") == "Waiting"
    line_row = f'#lines-body tr[data-line="{sales}"]'
    assert text_of(browser, line_row + " .waiting") == "1"
    wait(browser).until(lambda d: text_of(d, line_row + " .longest") not in ("", "0:00"))
    browser.save_screenshot(str(SHOTS / "panel-waiting.png"))

    # staffing: move kari to Sales from the panel; she is offered the call once ready
    browser.find_element(By.CSS_SELECTOR, row + " .staff-btn").click()
    boxes = {
        int(b.get_attribute("value")): b
        for b in browser.find_elements(By.CSS_SELECTOR, "#staff-choices input")
    }
    assert sorted(boxes) == sorted([support, sales])
    boxes[support].click()
    boxes[sales].click()
    browser.find_element(By.ID, "staff-ok").click()
    wait(browser).until(lambda d: text_of(d, row + " .agent-lines") == "Sales")
    assert live.call(lambda: desk.agents[kari].chosen) == frozenset({sales})

    # unpause from the panel: the call is offered to kari, then taken away when the caller leaves
    browser.find_element(By.CSS_SELECTOR, row + " .unpause-btn").click()
    wait(browser).until(lambda d: text_of(d, row + " .state") == "Call offered")
    wait(browser).until(lambda d: text_of(d, call_row + " .phase") == "Offered")
    assert "+4791112222" in text_of(browser, row + " .call")
    live.call(desk.caller_left, "ch-1")
    wait(browser).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, call_row)))
    wait(browser).until(lambda d: text_of(d, line_row + " .waiting") == "0")
    wait(browser).until(lambda d: text_of(d, row + " .state") == "Ready")

    # pause with a reason chosen on the page
    Select(browser.find_element(By.CSS_SELECTOR, row + " .pause-reason")).select_by_value("lunch")
    browser.find_element(By.CSS_SELECTOR, row + " .pause-btn").click()
    wait(browser).until(lambda d: text_of(d, row + " .state") == "Paused")
    assert text_of(browser, row + " .reason") == "Lunch"

    # priority: Support 1 -> 9, typed into the row and sent; the table re-orders
    box = browser.find_element(By.ID, f"prio-input-{support}")
    box.clear()
    box.send_keys("9")
    browser.find_element(By.ID, f"prio-save-{support}").click()
    wait(browser).until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#lines-body tr").get_attribute("data-line")
            == str(support)
        )
    )
    assert live.call(lambda: desk.line_priorities[support]) == 9
    box = browser.find_element(By.ID, f"prio-input-{support}")
    box.clear()
    box.send_keys("abc")  # a number input refuses letters: nothing is sent
    browser.find_element(By.ID, f"prio-save-{support}").click()
    wait(browser).until(EC.visibility_of_element_located((By.ID, "flash")))
    assert live.call(lambda: desk.line_priorities[support]) == 9

    # a campaign: start it from the panel
    camp = f'#campaigns-body tr[data-campaign="{live.campaign_id}"]'
    wait(browser).until(lambda d: text_of(d, camp + " .status") == "Stopped")
    browser.find_element(By.CSS_SELECTOR, camp + " .camp-running").click()
    wait(browser).until(lambda d: text_of(d, camp + " .status") == "Running")
    assert not browser.find_element(By.CSS_SELECTOR, camp + " .camp-running").is_enabled()
    # the dialer's live figures for it: agents, lines dialing, pace, why it paces so
    live.dialer_rows = [dialer_row(live.campaign_id, "conservative")]
    wait(browser).until(lambda d: text_of(d, camp + " .dialing") == "3")
    assert text_of(browser, camp + " .camp-agents") == "2 / 5"
    assert text_of(browser, camp + " .lines-note") == "4 lines in all"
    assert text_of(browser, camp + " .pace") == "18.5/min"
    assert text_of(browser, camp + " .answer-rate") == "27% answered"
    assert text_of(browser, camp + " .pacing") == "Careful: abandon rate near the cap"
    assert text_of(browser, camp + " .rate") == "0.0% / 3.0%"
    assert text_of(browser, camp + " .rate-counts") == "0 of 0"
    browser.save_screenshot(str(SHOTS / "panel-campaign-live.png"))
    live.dialer_rows = []

    # Asterisk goes away: the banner comes back with the reason
    live.call(live.ami_down, "connection lost")
    banner = wait(browser).until(EC.visibility_of_element_located((By.ID, "ami-stale")))
    wait(browser).until(lambda d: "connection lost" in d.find_element(By.ID, "ami-stale").text)
    assert "Since" in banner.text
    browser.save_screenshot(str(SHOTS / "panel-actions.png"))
    live.call(live.ami_up)

    with transaction(live.sessions) as s:
        actions = [
            (a.actor, a.action) for a in s.scalars(select(m.AuditLog).order_by(m.AuditLog.id))
        ]
    assert actions == [
        ("siri", "agent_lines"),
        ("siri", "agent_unpause"),
        ("siri", "agent_pause"),
        ("siri", "line_priority"),
        ("siri", "campaign_status"),
    ]


def dialer_row(campaign_id, pacing):
    """A row as ``Dialer.snapshot`` gives it."""
    return {
        "campaign_id": campaign_id,
        "lines": 4,
        "ringing": 3,
        "waiting": 0,
        "pacing": pacing,
        "nothing_to_dial": False,
        "agents": 5,
        "ready": 2,
        "dials_per_minute": 18.5,
        "answer_rate": 0.27,
    }


def test_reconnecting_browser_gets_the_whole_state(browser, live):
    log_in(browser, live, "adam", "adam-secret-1")
    wait(browser).until(lambda d: d.execute_script("return window.__panel.seq()") >= 0)
    call = live.call(live.desk.call_arrived, "ch-2", live.lines["4721000003"], "+4790001111")
    browser.get(live.url + "/panel")  # a reload: snapshot first
    call_row = f'#calls-body tr[data-call="{call}"]'
    wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, call_row)))
    live.call(live.desk.caller_left, "ch-2")
    wait(browser).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, call_row)))


def test_several_nodes_show_a_nodes_box_and_a_node_column(browser, live):
    """Issue #14: another node's agent beside ours, its node named, marked down."""
    from asterisk_cube.web.panel_nodes import CenterRows

    log_in(browser, live, "adam", "adam-secret-1")
    wait(browser).until(lambda d: d.execute_script("return window.__panel.seq()") >= 0)
    assert not browser.find_element(By.ID, "nodes-card").is_displayed()  # one node
    node = {"host": "pbx", "started": 1.0, "heartbeat": 2.0, "taken_over": None}
    remote = {
        "id": 999, "username": "per", "name": "Per Remote", "role": "agent", "state": "ready",
        "since": 1.0, "pause_reason": None, "pause_requested": None, "wrap_up_until": None,
        "call_id": None, "endpoint": "PJSIP/per", "node": "b", "lines": [],
    }  # fmt: skip
    rows = CenterRows(
        nodes=[
            {**node, "name": "local", "live": True, "me": True},
            {**node, "name": "b", "live": False, "me": False},
        ],
        agents=[remote],
    )
    live.call(live.show_center, rows)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "nodes-card")))
    row = '#agents-body tr[data-agent="999"]'
    wait(browser).until(lambda d: text_of(d, row + " .agent-node") == "b (down)")
    assert text_of(browser, '#nodes-body tr[data-node="b"] .node-live') == "Down"
    assert "(this one)" in text_of(browser, '#nodes-body tr[data-node="local"] .node-name')
    assert not browser.find_element(By.CSS_SELECTOR, row + " .pause-box").is_displayed()
    browser.save_screenshot(str(SHOTS / "panel-nodes.png"))
    live.call(live.show_center, CenterRows())  # back to one node for the other tests
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "nodes-card")))


def test_norwegian(tmp_path, live):
    driver = make_browser(tmp_path / "nb", lang="nb-NO")
    try:
        log_in(driver, live, "nora", "nora-secret-1")  # nora is an agent, language nb
        assert "Rollen din gir ikke tilgang til denne siden." in driver.page_source
    finally:
        driver.quit()
    with transaction(live.sessions) as s:
        s.get(m.Agent, live.ids["adam"]).language = "nb"
    driver = make_browser(tmp_path / "nb2", lang="nb-NO")
    try:
        log_in(driver, live, "adam", "adam-secret-1")
        wait(driver).until(lambda d: d.title.startswith("Live monitorering"))
        assert driver.find_element(By.CSS_SELECTOR, "#lines-card h2").text == "Linjer"
        support = live.lines["4721000001"]
        wait(driver).until(lambda d: d.find_element(By.ID, f"prio-save-{support}").text == "Lagre")
        # the dialer's figures in Norwegian
        with transaction(live.sessions) as s:
            s.get(m.Campaign, live.campaign_id).status = m.CampaignStatus.RUNNING
        live.dialer_rows = [dialer_row(live.campaign_id, "predictive")]
        camp = f'#campaigns-body tr[data-campaign="{live.campaign_id}"]'
        wait(driver).until(lambda d: text_of(d, camp + " .pacing") == "Prediktiv: ringer i forkant")
        assert text_of(driver, camp + " .lines-note") == "4 linjer i alt"
        assert text_of(driver, camp + " .answer-rate") == "27% svarte"
        driver.save_screenshot(str(SHOTS / "panel-nb.png"))
    finally:
        driver.quit()
        live.dialer_rows = []
        with transaction(live.sessions) as s:
            s.get(m.Agent, live.ids["adam"]).language = "en"
