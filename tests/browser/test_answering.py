"""The answering service on the agent desktop in headless Chromium (F-S1..F-S9): the client's
script in formal and informal tone, forward status pushed as it changes (ringing target 1,
then 2, announcing, connect; both failing -> take a note), the call note refusing the
client's own number, the closed banner, Norwegian labels. Fake distributor, real database
for the clients. Screenshots go to $DESK_SCREENSHOTS (default /tmp)."""

from __future__ import annotations

import browserkit
import pytest
from browserkit import SHOTS, gone, text_in, visible, wait
from fakes.answering import OWN_NUMBER, SALES_TARGETS, TARGETS, add_client, attach
from fakes.web import LiveDesktop, demo_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

pytestmark = pytest.mark.browser

FORMAL, INFORMAL, CLOSED = 7, 8, 9  # fake desk line ids
DIDS = {FORMAL: "+4721000077", INFORMAL: "+4721000078", CLOSED: "+4721000079"}
NAMES = {FORMAL: "Fjord Regnskap AS", INFORMAL: "Bakeriet Sol", CLOSED: "Stengt Eiendom AS"}
EXCEPTION = "Inventory week: the shop is closed, take notes for pick-ups."


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveDesktop(tmp_path_factory.mktemp("answering"))
    clients = {
        FORMAL: add_client(server.sessions, None, line_id=FORMAL, did=DIDS[FORMAL]),
        INFORMAL: add_client(
            server.sessions,
            None,
            line_id=INFORMAL,
            did=DIDS[INFORMAL],
            name=NAMES[INFORMAL],
            tone="informal",
            exception=EXCEPTION,
            own_number="+4722000010",
        ),
        CLOSED: add_client(
            server.sessions,
            None,
            line_id=CLOSED,
            did=DIDS[CLOSED],
            name=NAMES[CLOSED],
            hours=None,  # no opening hours: always closed
            own_number="+4722000020",
        ),
    }

    def factory(hub, ids):
        desk = demo_for(hub, ids)
        for line, client in clients.items():
            hours = "closed" if line == CLOSED else "open"
            attach(desk, client, did=DIDS[line], name=NAMES[line], hours=hours)
            for agent in desk.agents.values():
                agent.permitted.append(line)
        return desk

    server.desk_factory = factory
    server.clients = clients
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def nobody_working(live):
    """Each test starts with every agent logged out (the fake desk lives for the module)."""

    def reset():
        for agent in live.desk.agents.values():
            agent.state, agent.call, agent.offer_call, agent.chosen = "logged_out", None, None, []
            agent.pending_pause = None
        for call in live.desk.calls.values():
            if call.state not in ("closed", "missed"):
                call.state = "closed"

    live.call(reset)
    yield


def log_in(driver, live, username, password, lines):
    browserkit.log_in(driver, live.url, username, password, landing="/desk")
    visible(driver, "lines-dialog")
    for box in driver.find_elements(By.CSS_SELECTOR, "#lines-choices input"):
        if box.is_selected() != (int(box.get_attribute("value")) in lines):
            box.click()
    driver.find_element(By.ID, "lines-ok").click()
    gone(driver, "lines-dialog")


def take_call(driver, live, line, caller="+4791234567"):
    call = live.call(live.desk.incoming_call, line, caller)
    visible(driver, "accept-btn").click()
    visible(driver, "script-body")
    return call


def shown(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def visible_buttons(driver, css):
    return [b for b in driver.find_elements(By.CSS_SELECTOR, css) if b.is_displayed()]


def finish(driver, live, call):
    live.call(live.desk.caller_hangs_up, call)
    visible(driver, "close-btn").click()
    gone(driver, "script-card")
    visible(driver, "wrapup-finish").click()
    text_in(driver, "state-badge", "Ready")


def test_formal_script_forward_falls_back_and_connects(browser, live):
    log_in(browser, live, "kari", "kari-secret-1", [FORMAL, INFORMAL, CLOSED])
    text_in(browser, "state-badge", "Ready")
    call = take_call(browser, live, FORMAL)

    greeting = browser.find_element(By.ID, "script-greeting").text
    assert greeting.endswith(", Fjord Regnskap AS, du snakker med Kari Agent.")
    assert greeting.split(",")[0] in ("God morgen", "God ettermiddag", "God kveld")
    assert browser.find_element(By.ID, "script-client").text == "Fjord Regnskap AS"
    # the greeting comes first and is the biggest text on the card
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('#script-card *')]"
        ".filter(e => e.offsetParent && e.childElementCount === 0 && e.textContent.trim())"
        ".map(e => [e.id, parseFloat(getComputedStyle(e).fontSize)])"
    )
    assert max(sizes, key=lambda s: s[1])[0] == "script-greeting"
    body_order = browser.execute_script(
        "return [...document.querySelectorAll('#script-body > *')]"
        ".filter(e => e.offsetParent).map(e => e.id || e.className)"
    )
    assert body_order[0] == "say"
    # formal tone: spell names and repeat numbers back
    assert shown(browser, "hint-spell") and shown(browser, "hint-repeat")
    assert shown(browser, "note-spell") and shown(browser, "note-repeat")
    assert not shown(browser, "script-exception") and not shown(browser, "script-closed")
    assert "Mon–Sun" in browser.find_element(By.ID, "script-hours").text or "man–søn" in (
        browser.find_element(By.ID, "script-hours").text
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#script-employees tr")
    assert [r.find_element(By.TAG_NAME, "strong").text for r in rows] == ["Kari Holm", "Ola Berg"]
    assert [b.text for b in visible_buttons(browser, "[data-employee] button")] == [
        "Take a note",
        "Forward",
    ]
    browser.find_element(By.CSS_SELECTOR, "[data-faq] summary").click()
    assert "Take a note for accounting." in browser.find_element(By.ID, "script-faq").text
    browser.save_screenshot(str(SHOTS / "answering-formal.png"))

    # forward with the client's standard handling: target 1 rings, no answer, target 2
    visible_buttons(browser, "#script-handling-actions .fwd-btn")[0].click()
    text_in(browser, "forward-text", f"Ringing {TARGETS[0]} (1 of 2)")
    assert visible_buttons(browser, "#script-card .fwd-btn") == []  # one forward at a time
    assert shown(browser, "forward-cancel") and not shown(browser, "forward-connect")
    live.call(live.desk.forward_outcome, call, False)
    text_in(browser, "forward-text", f"Ringing {TARGETS[1]} (2 of 2)")
    live.call(live.desk.forward_outcome, call, True)
    text_in(browser, "forward-text", f"{TARGETS[1]} answered. Announce the caller")
    assert shown(browser, "forward-connect")
    browser.save_screenshot(str(SHOTS / "answering-announcing.png"))
    browser.find_element(By.ID, "forward-connect").click()
    gone(browser, "script-card")
    text_in(browser, "state-badge", "Ready")
    assert live.desk.calls[call].forward.status == "connected"


def test_both_targets_fail_then_a_note_refusing_the_own_number(browser, live):
    log_in(browser, live, "ola", "ola-secret-12", [FORMAL])
    call = take_call(browser, live, FORMAL, caller="+4798765432")
    sales = live.clients[FORMAL].sales
    browser.find_element(By.CSS_SELECTOR, f'[data-employee="{sales}"] .fwd-btn').click()
    text_in(browser, "forward-text", f"Ola Berg ({SALES_TARGETS[0]})")
    live.call(live.desk.forward_outcome, call, False)
    text_in(browser, "forward-text", f"Ola Berg ({SALES_TARGETS[1]}) (2 of 2)")
    live.call(live.desk.forward_outcome, call, False)
    text_in(browser, "forward-text", "Nobody took the call")
    # the note form is ready for the employee the call was for
    wait(browser).until(
        lambda d: (
            Select(d.find_element(By.ID, "note-employee")).first_selected_option.text
            == "Ola Berg – Salg"
        )
    )
    assert browser.switch_to.active_element.get_attribute("id") == "note-caller-name"
    assert browser.find_element(By.ID, "note-callback").get_attribute("value") == "+4798765432"
    assert shown(browser, "forward-note") and not shown(browser, "forward-connect")

    browser.find_element(By.ID, "note-caller-name").send_keys("Per Hansen")
    callback = browser.find_element(By.ID, "note-callback")
    callback.clear()
    callback.send_keys("22 00 00 00")  # the client's own number, written nationally
    browser.find_element(By.ID, "note-message").send_keys("Wants an offer for 40 chairs.")
    browser.find_element(By.ID, "note-send").click()
    message = visible(browser, "note-msg").text
    assert message.startswith(f"Callback number: {OWN_NUMBER} is Fjord Regnskap AS's own number")
    assert callback.get_attribute("aria-invalid") == "true"
    assert live.desk.notes == []
    browser.save_screenshot(str(SHOTS / "answering-note-refused.png"))

    callback.clear()
    callback.send_keys("+47 412 34 567")
    browser.find_element(By.ID, "note-send").click()
    text_in(browser, "note-sent", "Note saved")
    assert not shown(browser, "note-msg")
    note = live.desk.notes[-1]
    assert (note.caller_name, note.callback_number, note.employee_id) == (
        "Per Hansen",
        "+47 412 34 567",
        sales,
    )
    assert note.message == "Wants an offer for 40 chairs."
    browser.find_element(By.ID, "hangup-btn").click()
    visible(browser, "close-btn").click()
    gone(browser, "script-card")


def test_informal_script_with_the_current_exception(browser, live):
    log_in(browser, live, "kari", "kari-secret-1", [INFORMAL])
    call = take_call(browser, live, INFORMAL)
    assert (
        browser.find_element(By.ID, "script-greeting").text
        == "Hei, du har ringt Bakeriet Sol – Kari Agent her!"
    )
    assert browser.find_element(By.ID, "script-client").text == "Bakeriet Sol"
    # informal: no spelling / repeating reminders
    for element in ("script-tone-hints", "hint-spell", "hint-repeat", "note-spell", "note-repeat"):
        assert not shown(browser, element), element
    assert browser.find_element(By.ID, "script-tone").text == "Informal"
    exception = visible(browser, "script-exception")
    assert EXCEPTION in exception.text
    assert exception.location["y"] < browser.find_element(By.ID, "script-instruction").location["y"]
    browser.save_screenshot(str(SHOTS / "answering-informal.png"))
    finish(browser, live, call)


def test_the_exceptions_end_is_on_the_clients_clock_not_the_browsers(browser, live):
    # The agent's browser is in New York; the client is in Oslo. The exception runs until
    # 31 December 2099 inclusive: midnight into 1 January in Oslo, 18:00 on 31 December in
    # New York. The agent reads the client's time to callers.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    log_in(browser, live, "kari", "kari-secret-1", [INFORMAL])
    call = take_call(browser, live, INFORMAL)
    until = visible(browser, "script-exception-until").text
    assert browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone") == (
        "America/New_York"
    )
    assert "Jan" in until and "00:00" in until and "(Europe/Oslo)" in until, until
    assert "Dec" not in until and "18:00" not in until, until
    finish(browser, live, call)


def test_closed_client_has_no_forward_only_notes(browser, live):
    log_in(browser, live, "kari", "kari-secret-1", [CLOSED])
    call = take_call(browser, live, CLOSED)
    banner = visible(browser, "script-closed")
    assert "Closed now." in banner.text and "take a note" in banner.text
    assert browser.find_element(By.ID, "script-hours-badge").text == "Closed"
    assert visible_buttons(browser, "#script-card .fwd-btn") == []
    assert {b.text for b in visible_buttons(browser, "#script-card .note-btn")} == {"Take a note"}
    browser.save_screenshot(str(SHOTS / "answering-closed.png"))
    finish(browser, live, call)


def test_norwegian_labels(browser, live):
    log_in(browser, live, "nora", "nora-secret-1", [FORMAL])
    call = take_call(browser, live, FORMAL)
    assert browser.find_element(By.CSS_SELECTOR, ".say-label").text.upper() == "SI"
    assert browser.find_element(By.ID, "note-heading").text == "Samtalenotat"
    assert browser.find_element(By.ID, "hint-spell").text == "Stav navn tilbake til innringeren."
    assert visible_buttons(browser, "#script-handling-actions .fwd-btn")[0].text == "Sett over"
    browser.save_screenshot(str(SHOTS / "answering-nb.png"))
    live.call(live.desk.caller_hangs_up, call)
    visible(browser, "close-btn").click()
    gone(browser, "script-card")
