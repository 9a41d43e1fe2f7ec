"""The live panel's agent badge for an agent whose inbound is blocked (F-I5: an outbound
call, or the dialer dialing for it): before, "On a call ⛔", a character headless Chromium
(and any system without an emoji font) has no glyph for, so the badge showed a box. Now the
badge says only the state and the marker is drawn in CSS (panel.css)."""

from __future__ import annotations

import sys
from pathlib import Path

import browserkit
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datetime as dt

from fakes.panel import LivePanel
from selenium.webdriver.common.by import By

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path):
    server = LivePanel(tmp_path).start()
    yield server
    server.stop()


def marker(driver, css):
    """The badge's ::after box as the browser lays it out (content, width, colour)."""
    return driver.execute_script(
        "var s = getComputedStyle(document.querySelector(arguments[0]), '::after');"
        "return [s.content, parseFloat(s.width), s.backgroundColor];",
        css,
    )


def test_blocked_agent_on_a_call_has_a_drawn_marker_not_a_glyph(browser, live):
    kari = live.ids["kari"]
    live.call(live.desk.login, kari)
    live.call(live.desk.ready, kari)
    with transaction(live.sessions) as s:  # a power call connected to kari
        row = m.Call(
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=live.campaign_id,
            started_at=dt.datetime.now(dt.UTC),
        )
        s.add(row)
        s.flush()
        call_id = row.id
    live.call(
        live.desk.outbound_started,
        call_id=call_id,
        agent_id=kari,
        campaign_id=live.campaign_id,
        contact_id=None,
        number="+4791112222",
        channel_id="ch-out",
        mode="power",
        connected=True,
    )
    browserkit.log_in(browser, live.url, "siri", "siri-secret-1")
    browser.get(live.url + "/panel")
    badge = f'#agents-body tr[data-agent="{kari}"] .state'
    browserkit.wait(browser).until(
        lambda d: d.find_element(By.CSS_SELECTOR, badge).get_attribute("data-state") == "busy"
    )
    element = browser.find_element(By.CSS_SELECTOR, badge)
    assert element.text == "On a call"  # the state only: every character in every font
    assert all(ord(ch) < 0x80 for ch in element.get_attribute("textContent"))
    assert element.get_attribute("data-blocked") is not None
    assert element.get_attribute("title") == "Inbound is blocked for now."
    content, width, colour = marker(browser, badge)
    assert content == '""' and width > 0, (content, width)
    assert colour == "rgb(179, 38, 30)"  # --danger

    browser.save_screenshot(str(browserkit.SHOTS / "panel-blocked-marker.png"))

    live.call(live.desk.outbound_ended, call_id)  # the call ends: no longer blocked
    browserkit.wait(browser).until(lambda d: element.get_attribute("data-blocked") is None)
    assert not element.get_attribute("title")
    assert marker(browser, badge)[0] == "none"
