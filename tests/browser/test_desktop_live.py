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
