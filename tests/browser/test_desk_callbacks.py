"""Scheduled callbacks from the agent desktop (F-E6) in headless Chromium against the real
product: `serve` on the sandbox Asterisk, a preview campaign of two SIPp customers who answer
and stay on the line, agent01's SIPp phone.

The agent, on a call with contact A, schedules a callback for all agents (while the call
goes on: the dialer writes it when the call ends) and sees it in its scheduled calls after
hanging up; on the next call, with contact B, it schedules one for itself a minute or so
ahead after hanging up. At that time the dialer delivers B's callback to the agent, and the
call card shows the comment (seed 001: "the comment is shown when the call is sent to you").
Then it cancels A's callback from the list."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import browserkit
import pytest
from browserkit import SHOTS, text_in, visible, wait
from cubeproc import Serve
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from sippkit import SCENARIOS, Sipp, phone

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CAMPAIGN = "Callbacks desk"
OSLO = ZoneInfo("Europe/Oslo")  # the campaign's zone (the default)
# B RR TT SS (tests/sipp/uas_customer.xml): answer after 0.5 s, wait for the BYE
CONTACT_A = "+4791050071"
CONTACT_B = "+4791050072"
# SIPp control and media ports inside base..base+999, clear of the sandbox's own ports: the
# defaults (+2600, +3400) reach into the range of an instance 2000 ports up
CUSTOMERS_PORTS = {"control_port": 700, "media_port": 800}
AGENT_PORTS = {"control_port": 701, "media_port": 810}


def ports(sandbox, offsets):
    return {key: sandbox.base_port + offset for key, offset in offsets.items()}


@pytest.fixture
def serve(sandbox, tmp_path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone,name\n{CONTACT_A},Anna Alfa\n{CONTACT_B},Bjørn Beta\n")
    srv = Serve.on_sandbox(
        sandbox,
        tmp_path,
        ["demo", "load", "--agents", "1"],  # agent01 holds the skill "sales"
        ["dialplan", "install"],
        # --wrap-up 120: the agent finishes wrap-up itself: the next call waits for it
        ["campaign", "add", CAMPAIGN, "--mode", "preview", "--skill", "sales",
         "--wrap-up", "120", "--callback-reservation", "5"],
        ["contacts", "import", CAMPAIGN, str(contacts)],
    )  # fmt: skip
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def customers(sandbox, tmp_path):
    with Sipp(
        SCENARIOS / "uas_customer.xml",
        sandbox.customer_ports[0],
        tmp_path / "customers",
        remote=f"127.0.0.1:{sandbox.sip_port}",
        trace_messages=False,
        **ports(sandbox, CUSTOMERS_PORTS),
    ) as uas:
        yield uas


def set_value(browser, element_id, value):
    """A datetime-local input takes its value like this in every locale."""
    field = browser.find_element(By.ID, element_id)
    browser.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        field,
        value,
    )


def item_xpath(contact_name, state):
    return (
        f"//ul[@id='callback-list']/li[@data-state='{state}']"
        f"[.//span[@class='cb-who'][text()='{contact_name}']]"
    )


def callback_item(browser, contact_name, state, timeout=10):
    """The text of the scheduled-calls entry of ``contact_name`` once it is in ``state``
    (read inside the wait: the list is rebuilt when it changes)."""

    def text(driver):
        item = driver.find_element(By.XPATH, item_xpath(contact_name, state))
        return item.is_displayed() and (
            item.text,
            bool(item.find_elements(By.CSS_SELECTOR, "button.cb-cancel")),
        )

    return wait(browser, timeout).until(text)


def cancel_item(browser, contact_name):
    """Click the entry's cancel button (found afresh if the list was rebuilt meanwhile)."""

    def click(driver):
        item = driver.find_element(By.XPATH, item_xpath(contact_name, "scheduled"))
        item.find_element(By.CSS_SELECTOR, "button.cb-cancel").click()
        return True

    wait(browser).until(click)


def connected_with(browser, number, timeout=30):
    visible(browser, "call-card", timeout)
    text_in(browser, "call-caller", number, timeout)
    wait(browser, timeout).until(
        lambda d: d.find_element(By.ID, "call-state").get_attribute("data-state") == "connected"
    )
    visible(browser, "cb-box")


def close_and_ready(browser):
    """Close the call card and finish wrap-up: the dialer may call for the agent again.

    Ready can last a few milliseconds: with a contact left, the preview dialer calls for
    the agent at once (busy). Either shows the wrap-up finished; waiting for the badge to
    read "Ready" missed it on a busy machine."""
    text_in(browser, "call-state", "Ended")  # the hang-up has been handled: it may close
    browser.find_element(By.ID, "close-btn").click()
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "call-card")))
    wait(browser).until(
        lambda d: d.find_element(By.ID, "state-badge").get_attribute("data-state") == "wrap_up"
    )
    browser.find_element(By.ID, "wrapup-finish").click()
    wait(browser).until(
        lambda d: (
            d.find_element(By.ID, "state-badge").get_attribute("data-state") in ("ready", "busy")
        )
    )


def test_schedule_list_delivery_with_comment_and_cancel(
    serve, sandbox, customers, browser, tmp_path
):
    browserkit.log_in(browser, serve.url, "agent01", "demo-password", landing="/desk")
    visible(browser, "lines-dialog")
    browser.find_element(By.ID, "lines-ok").click()
    text_in(browser, "state-badge", "Ready")
    visible(browser, "callbacks-card")  # agent01 works for an outbound campaign
    text_in(browser, "no-callbacks", "No scheduled calls")

    with phone(
        sandbox,
        sandbox.agent_port(1),
        tmp_path / "agent01",
        answer_ms=300,
        trace_messages=False,
        **ports(sandbox, AGENT_PORTS),
    ):
        serve.cli("campaign", "start", CAMPAIGN)

        # call 1, Anna: during the call, a callback tomorrow 10:00 for all agents
        connected_with(browser, CONTACT_A)
        assert "Europe/Oslo" in browser.find_element(By.ID, "cb-zone").text
        tomorrow = (dt.datetime.now(OSLO) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
        set_value(browser, "cb-when", f"{tomorrow}T10:00")
        browser.find_element(By.ID, "cb-comment").send_keys("Call after ten, about the offer")
        browser.find_element(By.ID, "cb-for-all").click()
        browser.find_element(By.ID, "cb-submit").click()
        text_in(browser, "cb-done", "when the call ends")
        browser.save_screenshot(str(SHOTS / "desk-callback-form.png"))
        browser.find_element(By.ID, "hangup-btn").click()
        anna, cancellable = callback_item(browser, "Anna Alfa", "scheduled")
        assert f"{tomorrow} 10:00 (Europe/Oslo)" in anna and cancellable
        assert "Call after ten, about the offer" in anna and "all agents" in anna
        close_and_ready(browser)

        # call 2, Bjørn: after hanging up, a callback for me at the next full minute that
        # leaves time to fill the form in
        connected_with(browser, CONTACT_B)
        browser.find_element(By.ID, "hangup-btn").click()
        text_in(browser, "call-state", "Ended")
        due = (dt.datetime.now(OSLO) + dt.timedelta(seconds=80)).replace(second=0, microsecond=0)
        set_value(browser, "cb-when", due.strftime("%Y-%m-%dT%H:%M"))
        browser.find_element(By.ID, "cb-comment").send_keys("Wants the blue one")
        browser.find_element(By.ID, "cb-submit").click()
        text_in(browser, "cb-done", due.strftime("%H:%M"))
        bjorn, _ = callback_item(browser, "Bjørn Beta", "scheduled")
        assert "Wants the blue one" in bjorn and "· me" in bjorn
        browser.save_screenshot(str(SHOTS / "desk-callback-list.png"))
        close_and_ready(browser)

        # at the due time Bjørn's callback is delivered to agent01, comment on the card
        wait_s = (due - dt.datetime.now(OSLO)).total_seconds()
        connected_with(browser, CONTACT_B, timeout=wait_s + 60)
        assert dt.datetime.now(OSLO) >= due
        visible(browser, "call-comment")
        assert browser.find_element(By.ID, "call-comment-text").text == "Wants the blue one"
        callback_item(browser, "Bjørn Beta", "delivered", timeout=15)
        browser.save_screenshot(str(SHOTS / "desk-callback-delivered.png"))

        # Anna's callback is cancelled from the list (it is dialed again as a retry)
        cancel_item(browser, "Anna Alfa")
        alert = wait(browser).until(EC.alert_is_present())
        assert "Anna Alfa" in alert.text
        alert.accept()
        anna, cancellable = callback_item(browser, "Anna Alfa", "cancelled")
        assert "Call after ten, about the offer" in anna and not cancellable
        serve.cli("campaign", "pause", CAMPAIGN)
        browser.find_element(By.ID, "hangup-btn").click()
        text_in(browser, "call-state", "Ended")
