"""The test call taken in the browser phone (issue #16's last proof): on the sandbox
Asterisk, agent01 logs in, picks the phone in the browser, clicks *Test call* on the desk;
the demo's test caller (demo/testcall.py, the same as ``asterisk-cube demo call``) rings
the test-call line, the offer arrives, the browser phone answers, RTP flows both ways (the
caller echoes what it hears), agent01 hangs up from the desk and nothing is left.

Asserted from outside too: ARI ``GET /channels`` holds the browser phone and the caller
during the call; ``pjsip show channelstats`` counts RTP both ways on both legs; after the
hang-up the caller's SIPp has ended (its UDP port is free again) and ARI ``GET /channels``
and ``core show channels`` show nothing left."""

from __future__ import annotations

import pytest
from browserkit import (
    SHOTS,
    ari,
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

from asterisk_cube.core.testcall import from_settings
from asterisk_cube.demo.testcall import port_busy, settings_env
from asterisk_cube.services.demo_data import TEST_DID

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def serve(sandbox, tmp_path):
    """serve on the sandbox with the demo's test-call line configured, as ``demo run``
    configures it."""
    srv = Serve.on_sandbox(sandbox, tmp_path)
    srv.env.update(settings_env(sandbox, TEST_DID))
    srv.cli_batch(["demo", "load", "--agents", "1"], ["dialplan", "install"], ["webrtc", "install"])
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def test_the_test_call_is_taken_in_the_browser_phone(serve, sandbox, media_browser):
    from asterisk_cube.config import load_settings

    target = from_settings(load_settings(env=serve.env).demo)
    assert target is not None and target.did == TEST_DID
    b = media_browser
    ready_on_the_browser_phone(b, serve, sandbox)

    visible(b, "test-call-card")
    text_in(b, "test-call-text", TEST_DID)
    b.find_element(By.ID, "test-call-btn").click()
    text_in(b, "test-call-done", f"Calling line {TEST_DID}")

    # the offer from the test-call line, accepted: the product rings the browser phone
    visible(b, "offer-card", timeout=20)
    text_in(b, "offer-did", TEST_DID)
    b.find_element(By.ID, "accept-btn").click()
    text_in(b, "phone-call-state", "Ringing", timeout=20)
    b.find_element(By.ID, "phone-answer").click()
    text_in(b, "phone-call-state", "In call with", timeout=20)
    visible(b, "call-card")
    text_in(b, "call-caller", target.caller_id.lstrip("+"))
    names = [c["name"] for c in ari(sandbox, "channels")]
    assert any(n.startswith("PJSIP/cube-webrtc-agent01-") for n in names), names
    assert any(n.startswith("PJSIP/carrier-") for n in names), names

    # RTP both ways on both legs: the fake microphone to the caller, its echo back
    try:
        legs = until(lambda: rtp_both_ways(sandbox), 20, "RTP both ways on both legs")
    except AssertionError:  # show what Asterisk counted
        raise AssertionError(sandbox.rx("pjsip show channelstats")) from None
    print("rx/tx packets per leg:", legs)
    b.save_screenshot(str(SHOTS / "desk-test-call.png"))

    # hang up from the desk: the caller ends, nothing is left in Asterisk
    b.find_element(By.ID, "hangup-btn").click()
    until(lambda: not port_busy(target.local_port), 15, "the test caller (SIPp) to end")
    until(lambda: nothing_left(sandbox), 15, "no channel left in Asterisk")
    wait(b).until(EC.invisibility_of_element_located((By.ID, "phone-call")))
    text_in(b, "phone-reg", "Browser phone: registered")
