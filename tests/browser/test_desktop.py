"""The agent desktop in real headless Chromium (Debian's chromium + chromedriver, Selenium)
against uvicorn serving the desktop with the fake distributor: log in, choose lines, get
an offer pushed, accept, screen pop, enquiry with forced registration, missed calls,
switch to Norwegian. Screenshots go to $DESK_SCREENSHOTS (default /tmp)."""

from __future__ import annotations

import browserkit
import pytest
from browserkit import SHOTS, gone, stale, text_in, visible, wait
from fakes.web import LiveDesktop
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

pytestmark = pytest.mark.browser

# Records notifications instead of showing them (headless has no notification centre).
NOTIFICATION_STUB = """
window.__notes = [];
window.Notification = function (title, opts) {
  window.__notes.push([title, (opts || {}).body]);
  this.close = function () {};
};
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveDesktop(tmp_path_factory.mktemp("desk")).start()
    yield server
    server.stop()


def log_in(driver, live, username, password):
    browserkit.log_in(driver, live.url, username, password, landing="/desk")


def test_wrong_password_shows_a_refusal(browser, live):
    browser.get(live.url + "/login")
    browser.find_element(By.ID, "username").send_keys("kari")
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    browser.find_element(By.ID, "login-btn").click()
    assert visible(browser, "login-error").text == "Wrong username or password."
    assert browser.current_url.endswith("/login")


def test_a_call_from_offer_to_registration(browser, live):
    desk = live.desk
    log_in(browser, live, "kari", "kari-secret-1")
    browser.execute_script(NOTIFICATION_STUB)

    # start of work: choose lines (all three are permitted; serve 1 and 3)
    visible(browser, "lines-dialog")
    browser.save_screenshot(str(SHOTS / "desk-lines.png"))
    boxes = {
        int(b.get_attribute("value")): b
        for b in browser.find_elements(By.CSS_SELECTOR, "#lines-choices input")
    }
    assert sorted(boxes) == [1, 2, 3]
    if boxes[2].is_selected():
        boxes[2].click()
    for line in (1, 3):
        if not boxes[line].is_selected():
            boxes[line].click()
    browser.find_element(By.ID, "lines-ok").click()
    gone(browser, "lines-dialog")
    text_in(browser, "state-badge", "Ready")
    assert desk.agents[live.ids["kari"]].chosen == [1, 3]

    # a call waiting on a line kari does not serve is counted, not offered
    other = live.call(desk.incoming_call, 2, "+4740000009")
    wait(browser).until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-line="2"] .count').text == "1"
    )
    assert not browser.find_element(By.ID, "offer-card").is_displayed()

    # the offer is pushed: card, big Accept button, notification
    call = live.call(desk.incoming_call, 3, "+4791234567")
    visible(browser, "offer-card")
    assert browser.find_element(By.ID, "offer-caller").text == "+4791234567"
    assert browser.find_element(By.ID, "offer-line").text == "Support"
    accept = browser.find_element(By.ID, "accept-btn")
    assert accept.size["height"] >= 50
    wait(browser).until(lambda d: d.execute_script("return window.__notes.length") == 1)
    assert browser.execute_script("return window.__notes[0][0]") == "Incoming call"
    assert browser.title.startswith("☎")
    browser.save_screenshot(str(SHOTS / "desk-offer.png"))
    accept.click()

    # screen pop
    visible(browser, "call-card")
    gone(browser, "offer-card")
    text_in(browser, "state-badge", "On a call")
    assert browser.find_element(By.ID, "call-did").text == "+4721000003"
    assert browser.find_element(By.ID, "call-caller").text == "+4791234567"
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#contact-list strong")]
    assert sorted(names) == ["Kari Nordmann", "Ola Nordmann"]
    item = next(
        li
        for li in browser.find_elements(By.CSS_SELECTOR, "#contact-list li")
        if "Kari Nordmann" in li.text
    )
    item.find_element(By.TAG_NAME, "button").click()
    wait(browser).until(
        lambda d: "Opened" in d.find_element(By.CSS_SELECTOR, "#contact-list li.opened").text
    )
    assert desk.calls[call].contact_id is not None

    # a pause asked for during the call waits for it, is shown, and can be taken back
    Select(browser.find_element(By.ID, "pause-reason")).select_by_index(0)
    browser.find_element(By.ID, "pause-btn").click()
    text_in(browser, "pause-requested-text", "Pause after the call:")
    assert not browser.find_element(By.ID, "pause-form").is_displayed()
    assert desk.agents[live.ids["kari"]].pending_pause is not None
    browser.find_element(By.ID, "pause-cancel").click()
    gone(browser, "pause-requested")
    assert desk.agents[live.ids["kari"]].pending_pause is None
    text_in(browser, "state-badge", "On a call")

    # enquiry form: radio for single choice, checkboxes for multi
    fieldsets = browser.find_elements(By.CSS_SELECTOR, "#enquiry-categories fieldset")
    kinds = [
        {i.get_attribute("type") for i in fs.find_elements(By.TAG_NAME, "input")}
        for fs in fieldsets
    ]
    assert kinds == [{"radio"}, {"checkbox"}, {"checkbox"}]
    visible(browser, "forced-note")
    browser.save_screenshot(str(SHOTS / "desk-call.png"))

    # forced registration: the card cannot be closed before registering
    browser.find_element(By.ID, "hangup-btn").click()
    text_in(browser, "state-badge", "Wrap-up")
    visible(browser, "close-btn").click()
    text_in(browser, "call-msg", "Register the enquiry before closing the call.")
    assert browser.find_element(By.ID, "call-card").is_displayed()
    assert desk.agents[live.ids["kari"]].call == call

    browser.find_element(
        By.CSS_SELECTOR, "#enquiry-categories label[for] input[type=radio]"
    ).click()
    product = fieldsets[1].find_elements(By.TAG_NAME, "input")
    product[0].click()
    product[2].click()
    browser.find_element(By.ID, "enquiry-comment").send_keys("Kunden ville lage nye profiler.")
    browser.find_element(By.ID, "register-btn").click()
    visible(browser, "registered-mark")
    gone(browser, "forced-note")
    registered = desk.calls[call]
    assert len(registered.topic_ids) == 3 and registered.comment.startswith("Kunden")
    browser.find_element(By.ID, "close-btn").click()
    gone(browser, "call-card")
    browser.find_element(By.ID, "wrapup-finish").click()
    # ready again: the waiting call on line 2 is still not ours; then it is abandoned
    text_in(browser, "state-badge", "Ready")
    live.call(desk.caller_hangs_up, other)
    visible(browser, "missed-list")
    wait(browser).until(lambda d: "+4740000009" in d.find_element(By.ID, "missed-list").text)
    browser.save_screenshot(str(SHOTS / "desk-missed.png"))
    missed = browser.find_element(By.CSS_SELECTOR, "#missed-list li")
    missed.find_elements(By.TAG_NAME, "button")[1].click()  # mark processed
    visible(browser, "no-missed")

    # switch to Norwegian: the page reloads in bokmål and stays so
    page = browser.find_element(By.TAG_NAME, "html")
    Select(browser.find_element(By.ID, "lang-select")).select_by_value("nb")
    wait(browser).until(stale(page))
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nb")
    text_in(browser, "state-badge", "Klar")
    assert browser.find_element(By.ID, "logout-btn").text == "Logg ut"
    assert "Tapte anrop" in browser.find_element(By.ID, "missed-card").text
    live.call(desk.incoming_call, 1, "+4798765432")
    visible(browser, "offer-card")
    assert browser.find_element(By.ID, "accept-btn").text == "Besvar"
    assert "Innkommende samtale" in browser.find_element(By.ID, "offer-card").text
    browser.find_element(By.ID, "accept-btn").click()
    visible(browser, "call-card")
    assert "Henvendelsesregistrering" in browser.find_element(By.ID, "call-card").text
    assert "Per Hansen" in browser.find_element(By.ID, "contact-list").text
    browser.save_screenshot(str(SHOTS / "desk-nb.png"))
    browser.find_element(By.ID, "hangup-btn").click()
    visible(browser, "close-btn").click()
    gone(browser, "call-card")
    text_in(browser, "state-badge", "Etterarbeid")

    # log out: back to the login page, the session is gone
    browser.find_element(By.ID, "wrapup-finish").click()
    text_in(browser, "state-badge", "Klar")
    browser.find_element(By.ID, "logout-btn").click()
    wait(browser).until(EC.url_to_be(live.url + "/login"))
    browser.get(live.url + "/desk")
    assert browser.current_url.endswith("/login")


def test_blocked_agent_sees_waiting_calls_blink(browser, live):
    desk = live.desk
    log_in(browser, live, "ola", "ola-secret-12")
    visible(browser, "lines-dialog")
    browser.find_element(By.ID, "lines-ok").click()
    text_in(browser, "state-badge", "Ready")
    live.call(desk.set_blocked, live.ids["ola"], True)
    visible(browser, "blocked-note")
    call = live.call(desk.incoming_call, 1, "+4740000010")
    wait(browser).until(
        lambda d: (
            "blink"
            in d.find_element(By.CSS_SELECTOR, 'tr[data-line="1"] .count').get_attribute("class")
        )
    )
    assert not browser.find_element(By.ID, "offer-card").is_displayed()
    live.call(desk.set_blocked, live.ids["ola"], False)  # hung up the outbound call
    visible(browser, "offer-card")
    assert browser.find_element(By.ID, "offer-caller").text == "+4740000010"
    browser.find_element(By.ID, "decline-btn").click()
    gone(browser, "offer-card")
    live.call(desk.caller_hangs_up, call)
