"""The phone in the browser (issue #16): headless Chromium with a fake microphone logs in
as agent01, picks "Phone in the browser" (the plain explanation, then the microphone once),
registers its WebRTC endpoint on the sandbox Asterisk (PJSIP over WebSocket, DTLS-SRTP),
takes an inbound call from a SIPp caller that plays a tone, and hangs up from the desk.

Asserted from outside too: ARI says the endpoint is online; Asterisk's ``pjsip show
channelstats`` counts RTP both ways on both legs; the caller gets the BYE; ARI ``GET
/channels`` and ``core show channels`` show nothing left."""

from __future__ import annotations

import json
import time

import pytest
from browserkit import (
    SHOTS,
    ari,
    explained,
    nothing_left,
    ready_on_the_browser_phone,
    rtp_both_ways,
    text_in,
    until,
    visible,
    wait,
)
from cubeproc import Serve
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from sippkit import talking_caller
from test_desk_callbacks import customers  # noqa: F401 - fixture: the SIPp customer phones
from websockets.sync.client import connect

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SUPPORT = "4721000001"  # demo data: the support line
POWER = "Browser power"
CUSTOMER = "+4791050074"  # tests/sipp/uas_customer.xml: answers after 0.5 s, waits for BYE


@pytest.fixture
def serve(sandbox, tmp_path):
    srv = Serve.on_sandbox(
        sandbox,
        tmp_path,
        ["demo", "load", "--agents", "1"],
        ["dialplan", "install"],
        ["webrtc", "install"],
    )
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def power_serve(sandbox, tmp_path):
    """agent01 (skill sales) and a power campaign with one customer, stopped until the
    browser phone is registered."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone,name\n{CUSTOMER},Camilla Kunde\n")
    srv = Serve.on_sandbox(
        sandbox,
        tmp_path,
        ["demo", "load", "--agents", "1"],
        ["dialplan", "install"],
        ["webrtc", "install"],
        ["campaign", "add", POWER, "--mode", "power", "--skill", "sales", "--wrap-up", "0"],
        ["campaign", "stop", POWER],
        ["contacts", "import", POWER, str(contacts)],
    )
    # what this proves is that the browser phone answers by itself; the 2 s abandon rule
    # (1.4 s for the agent's phone to answer) is proven with SIPp phones elsewhere. With
    # Chromium starved by the other worker's tests that budget can run out, the call is
    # abandoned and the agent paused: nothing here would be seen, so the budget is wide
    (tmp_path / "c.toml").write_text("[dialer]\nabandon_seconds = 10\n")
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def seen_in_asterisk(sandbox, press, wanted, timeout=10):
    """Press something (``press()``) and wait until Asterisk reports an ARI event on the
    browser phone's channel that ``wanted(event)`` accepts: an ARI observer app subscribed
    to every event source."""
    url = sandbox.ari_url.replace("http", "ws", 1)
    query = "app=webrtc-observer&subscribeAll=true&api_key=asterisk-cube:asterisk-cube"
    with connect(f"{url}/ari/events?{query}") as events:
        press()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = json.loads(events.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            channel = event.get("channel", {}).get("name", "")
            if channel.startswith("PJSIP/cube-webrtc-agent01-") and wanted(event):
                return True
    return False


def dtmf_seen(sandbox, press, digit, timeout=10):
    """Asterisk got ``digit`` from the browser phone after ``press()``."""

    def wanted(event):
        return event.get("type") == "ChannelDtmfReceived" and event["digit"] == digit

    return seen_in_asterisk(sandbox, press, wanted, timeout)


def event_type(name):
    return lambda event: event.get("type") == name


def test_browser_phone_takes_a_call_and_hangs_up(serve, sandbox, media_browser, tmp_path):
    b = media_browser
    ready_on_the_browser_phone(b, serve, sandbox)
    call = talking_caller(sandbox, SUPPORT, tmp_path / "caller", caller_id="91234567").started()
    with explained(serve, sandbox, "the call never reached the browser phone"):
        visible(b, "offer-card", timeout=20)
        b.find_element(By.ID, "accept-btn").click()
        # the product rings the browser phone, as it would a desk phone
        text_in(b, "phone-call-state", "Ringing", timeout=20)
        b.find_element(By.ID, "phone-answer").click()
        text_in(b, "phone-call-state", "In call with", timeout=20)
    visible(b, "call-card")
    text_in(b, "call-caller", "91234567")

    # RTP both ways on both legs (the tone from SIPp to the browser, the fake microphone back)
    try:
        legs = until(lambda: rtp_both_ways(sandbox), 20, "RTP both ways on both legs")
    except AssertionError:  # show what Asterisk counted
        raise AssertionError(sandbox.rx("pjsip show channelstats")) from None
    print("rx/tx packets per leg:", legs)
    b.save_screenshot(str(SHOTS / "desk-phone-call.png"))

    # a key on the desk's keypad reaches Asterisk as DTMF from the browser phone
    key = b.find_element(By.CSS_SELECTOR, '#phone-keypad .key[data-key="5"]')
    assert dtmf_seen(sandbox, key.click, "5"), "Asterisk got no DTMF 5 from the browser phone"

    # mute and hold show on the desk (and hold reaches Asterisk as a re-INVITE)
    def pressed(value):
        return lambda d: d.find_element(By.ID, "phone-mute").get_attribute("aria-pressed") == value

    b.find_element(By.ID, "phone-mute").click()
    wait(b).until(pressed("true"))
    b.find_element(By.ID, "phone-mute").click()
    wait(b).until(pressed("false"))
    hold = b.find_element(By.ID, "phone-hold")
    # Resume waits for Asterisk's answer to the hold's re-INVITE: JsSIP drops a second
    # re-INVITE while one is in flight, so a click then was lost (seen on a busy machine)
    right_after = []

    def click_hold():
        script = "arguments[0].click(); return arguments[0].disabled"
        right_after.append(b.execute_script(script, hold))

    assert seen_in_asterisk(sandbox, click_hold, event_type("ChannelHold")), "no hold in Asterisk"
    assert right_after == [True], "Resume offered before Asterisk answered the hold"
    text_in(b, "phone-call-state", "On hold", timeout=10)
    wait(b).until(EC.element_to_be_clickable((By.ID, "phone-hold")))
    assert hold.text == "Resume"
    assert seen_in_asterisk(sandbox, hold.click, event_type("ChannelUnhold")), "no resume"
    text_in(b, "phone-call-state", "In call with", timeout=10)

    # the agent hangs up from the desk: the caller gets the BYE, nothing is left in Asterisk
    b.find_element(By.ID, "phone-hangup").click()
    result = call.wait(30)
    assert result.ok, result.summary()
    until(lambda: nothing_left(sandbox), 15, "no channel left in Asterisk")
    wait(b).until(EC.invisibility_of_element_located((By.ID, "phone-call")))
    text_in(b, "phone-reg", "Browser phone: registered")


def test_a_power_call_rings_the_browser_phone_which_answers_by_itself(
    power_serve,
    sandbox,
    media_browser,
    customers,  # noqa: F811 - the fixture imported above
):
    b = media_browser
    ready_on_the_browser_phone(b, power_serve, sandbox)
    power_serve.cli("campaign", "start", POWER)
    # the dialer connects the answered customer with Call-Info: answer-after=0: no click
    with explained(power_serve, sandbox, "the browser phone never answered the power call"):
        text_in(b, "phone-call-state", "In call with", timeout=30)
    visible(b, "call-card")
    text_in(b, "call-caller", CUSTOMER)
    channels = ari(sandbox, "channels")
    assert any(c["name"].startswith("PJSIP/cube-webrtc-agent01-") for c in channels), channels
    # this time the call card's Hang up (the desk API ends every leg): the BYE reaches
    # the browser phone, whose call ends on the page
    b.find_element(By.ID, "hangup-btn").click()
    until(lambda: nothing_left(sandbox), 15, "no channel left in Asterisk")
    wait(b).until(EC.invisibility_of_element_located((By.ID, "phone-call")))
    text_in(b, "phone-reg", "Browser phone: registered")
