"""The agent desktop in headless Chromium against the real product: `serve` on the sandbox
Asterisk with demo data, a SIPp caller on the hotline and a SIPp agent phone. Log in,
choose lines, see the offer pushed, accept, see the screen pop, register the enquiry that
forced registration demands, close the call."""

from __future__ import annotations

import browserkit
import pytest
from browserkit import SHOTS, text_in, visible, wait
from cubeproc import Serve
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select
from sippkit import caller, phone

pytestmark = [pytest.mark.browser, pytest.mark.integration]

HOTLINE = "4721000002"  # demo data: hotline of the inbound campaign with forced registration


@pytest.fixture
def serve(sandbox, tmp_path):
    srv = Serve.on_sandbox(
        sandbox, tmp_path, ["demo", "load", "--agents", "1"], ["dialplan", "install"]
    )
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def test_real_call_from_offer_to_registration(serve, sandbox, browser, tmp_path):
    browserkit.log_in(browser, serve.url, "agent01", "demo-password", landing="/desk")

    visible(browser, "lines-dialog")
    for box in browser.find_elements(By.CSS_SELECTOR, "#lines-choices input"):
        if not box.is_selected():
            box.click()
    browser.find_element(By.ID, "lines-ok").click()
    text_in(browser, "state-badge", "Ready")

    with phone(sandbox, sandbox.agent_port(1), tmp_path / "phone", answer_ms=300):
        call = caller(sandbox, HOTLINE, tmp_path / "caller", caller_id="91234567", hold_ms=6000)
        call.start()
        visible(browser, "offer-card")
        assert browser.find_element(By.ID, "offer-caller").text == "91234567"
        assert browser.find_element(By.ID, "offer-line").text == "Sales hotline"
        browser.save_screenshot(str(SHOTS / "desk-live-offer.png"))
        browser.find_element(By.ID, "accept-btn").click()

        # screen pop: dialed line, caller, the contact the hotline created (F-I3, F-I6)
        visible(browser, "call-card")
        text_in(browser, "call-caller", "91234567")
        assert browser.find_element(By.ID, "call-did").text == HOTLINE
        text_in(browser, "contact-list", "+4791234567")
        browser.save_screenshot(str(SHOTS / "desk-live-call.png"))
        assert call.wait(30).ok

    # the caller hung up: wrap-up with forced registration (F-E2)
    text_in(browser, "state-badge", "Wrap-up")
    radios = browser.find_elements(By.CSS_SELECTOR, "#enquiry-categories input[type=radio]")
    radios[0].click()
    browser.find_element(By.ID, "enquiry-comment").send_keys("Wanted a price list.")
    browser.find_element(By.ID, "register-btn").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "close-btn").is_enabled())
    browser.find_element(By.ID, "close-btn").click()
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "call-card")))
    browser.save_screenshot(str(SHOTS / "desk-live-done.png"))


# Counts the desk's pushed messages by type (set before the page's own script runs).
SSE_COUNTER = """
window.__sse = {};
var add = EventSource.prototype.addEventListener;
EventSource.prototype.addEventListener = function (type, fn, opts) {
  return add.call(this, type, function (e) {
    window.__sse[type] = (window.__sse[type] || 0) + 1;
    return fn.call(this, e);
  }, opts);
};
"""


def _count_cell(browser, did):
    for row in browser.find_elements(By.CSS_SELECTOR, "#lines-body tr[data-line]"):
        if did in row.text:
            return row.find_element(By.CSS_SELECTOR, ".count").text
    return None


def test_the_queue_count_updates_live_from_a_count_push(serve, sandbox, browser, tmp_path):
    """Issue #19: a caller joining a line's queue updates the desk's count through a
    count-only push (no full view); leaving it (a missed call) brings the count back."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SSE_COUNTER})
    browserkit.log_in(browser, serve.url, "agent01", "demo-password", landing="/desk")
    visible(browser, "lines-dialog")
    for box in browser.find_elements(By.CSS_SELECTOR, "#lines-choices input"):
        if not box.is_selected():
            box.click()
    browser.find_element(By.ID, "lines-ok").click()
    text_in(browser, "state-badge", "Ready")
    Select(browser.find_element(By.ID, "pause-reason")).select_by_index(0)
    browser.find_element(By.ID, "pause-btn").click()  # paused: the caller waits
    text_in(browser, "state-badge", "Paused")
    wait(browser).until(lambda d: _count_cell(d, HOTLINE) == "0")
    views = browser.execute_script("return window.__sse.view || 0")
    assert views >= 1

    call = caller(sandbox, HOTLINE, tmp_path / "caller", caller_id="91234567", hold_ms=4000)
    call.start()
    wait(browser, 20).until(lambda d: _count_cell(d, HOTLINE) == "1")
    pushed = browser.execute_script("return window.__sse")
    assert pushed.get("count", 0) >= 1 and pushed.get("view", 0) == views, pushed
    browser.save_screenshot(str(SHOTS / "desk-live-count.png"))
    assert call.wait(30).ok  # it hung up waiting: a missed call, the count goes back
    wait(browser, 20).until(lambda d: _count_cell(d, HOTLINE) == "0")
