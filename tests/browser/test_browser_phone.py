"""The phone in the browser (issue #16): headless Chromium with a fake microphone logs in
as agent01, picks "Phone in the browser" (the plain explanation, then the microphone once),
registers its WebRTC endpoint on the sandbox Asterisk (PJSIP over WebSocket, DTLS-SRTP),
takes an inbound call from a SIPp caller that plays a tone, and hangs up from the desk.

Asserted from outside too: ARI says the endpoint is online; Asterisk's ``pjsip show
channelstats`` counts RTP both ways on both legs; the caller gets the BYE; ARI ``GET
/channels`` and ``core show channels`` show nothing left."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from base64 import b64encode

import pytest
from browserkit import MEDIA_FLAGS, SHOTS, chrome, text_in, visible, wait
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
    srv = Serve.on_sandbox(sandbox, tmp_path)
    srv.cli("demo", "load", "--agents", "1")
    srv.cli("dialplan", "install")
    srv.cli("webrtc", "install")
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def power_serve(sandbox, tmp_path):
    """agent01 (skill sales) and a power campaign with one customer, stopped until the
    browser phone is registered."""
    srv = Serve.on_sandbox(sandbox, tmp_path)
    srv.cli("demo", "load", "--agents", "1")
    srv.cli("dialplan", "install")
    srv.cli("webrtc", "install")
    srv.cli("campaign", "add", POWER, "--mode", "power", "--skill", "sales", "--wrap-up", "0")
    srv.cli("campaign", "stop", POWER)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone,name\n{CUSTOMER},Camilla Kunde\n")
    srv.cli("contacts", "import", POWER, str(contacts))
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def media_browser(tmp_path):
    driver = chrome(tmp_path / "profile", MEDIA_FLAGS)
    yield driver
    driver.quit()


def ari(sandbox, path):
    req = urllib.request.Request(f"{sandbox.ari_url}/ari/{path}")
    req.add_header("Authorization", "Basic " + b64encode(b"asterisk-cube:asterisk-cube").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def dtmf_seen(sandbox, press, digit, timeout=10):
    """Press a key (``press()``) and wait until Asterisk reports the digit received on the
    browser phone's channel: an ARI observer app subscribed to every event source."""
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
            if (
                event.get("type") == "ChannelDtmfReceived"
                and event["channel"]["name"].startswith("PJSIP/cube-webrtc-agent01-")
                and event["digit"] == digit
            ):
                return True
    return False


def until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def channel_stats(sandbox):
    """{channel name prefix: (rx packets, tx packets)} from ``pjsip show channelstats``."""
    found = {}
    for line in sandbox.rx("pjsip show channelstats").splitlines():
        # " cube-cal carrier-00000000   00:00:21 ulaw     1085   0   0   0.000   1078 ..."
        # (BridgeId, ChannelId, UpTime, Codec, Receive Count Lost Pct Jitter, Transmit Count)
        m = re.search(r"(\S+)\s+\d+:\d+:\d+\s+\S+\s+(\d+)\s+\d+\s+\S+\s+\S+\s+(\d+)", line)
        if m:
            found[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return found


def rtp_both_ways(sandbox):
    stats = channel_stats(sandbox)
    legs = {
        "browser": [v for k, v in stats.items() if k.startswith("cube-webrtc-agent")],
        "caller": [v for k, v in stats.items() if k.startswith("carrier")],
    }
    ok = all(len(v) == 1 and v[0][0] > 20 and v[0][1] > 20 for v in legs.values())
    return legs if ok else None


def nothing_left(sandbox):
    return not ari(sandbox, "channels") and "0 active channels" in sandbox.rx("core show channels")


def ready_on_the_browser_phone(b, serve, sandbox):
    """Log in as agent01, take every line, pick the browser phone; registered, Ready."""
    b.get(serve.url + "/login")
    b.find_element(By.ID, "username").send_keys("agent01")
    b.find_element(By.ID, "password").send_keys("demo-password")
    b.find_element(By.ID, "login-btn").click()
    wait(b).until(EC.url_to_be(serve.url + "/desk"))
    visible(b, "lines-dialog")
    for box in b.find_elements(By.CSS_SELECTOR, "#lines-choices input"):
        if not box.is_selected():
            box.click()
    b.find_element(By.ID, "lines-ok").click()
    text_in(b, "state-badge", "Ready")

    # the phone in the browser: a plain explanation first, then the browser's question once
    # (a browser not asked yet: with the fake media UI it would say "granted" already)
    b.execute_cdp_cmd(
        "Browser.setPermission",
        {"permission": {"name": "microphone"}, "setting": "prompt", "origin": serve.url},
    )
    text_in(b, "phone-reg", "Desk phone in use")
    b.find_element(By.ID, "phone-browser").click()
    visible(b, "phone-explain")
    b.find_element(By.ID, "phone-mic-ok").click()
    text_in(b, "phone-reg", "Browser phone: registered", timeout=20)
    endpoint = ari(sandbox, "endpoints/PJSIP/cube-webrtc-agent01")
    assert endpoint["state"] == "online", endpoint
    b.save_screenshot(str(SHOTS / "desk-phone-registered.png"))


def test_browser_phone_takes_a_call_and_hangs_up(serve, sandbox, media_browser, tmp_path):
    b = media_browser
    ready_on_the_browser_phone(b, serve, sandbox)
    call = talking_caller(sandbox, SUPPORT, tmp_path / "caller", caller_id="91234567").started()
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
    b.find_element(By.ID, "phone-hold").click()
    text_in(b, "phone-call-state", "On hold", timeout=10)
    b.find_element(By.ID, "phone-hold").click()
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
