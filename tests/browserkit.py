"""Headless Chromium for browser tests (Debian's chromium + chromedriver via Selenium).

Playwright's own browser download cannot be reached here, so tests drive the Debian
binary. The flags keep Chromium from reaching for the network at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("DESK_SCREENSHOTS", "/tmp"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--lang=en-GB",
)


# A microphone and camera that need no hardware and no permission prompt, and WebRTC
# candidates on loopback: for the browser phone (tests/browser/test_browser_phone.py).
MEDIA_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
)


def chrome(profile_dir: Path, extra_flags: tuple[str, ...] = ()) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, *extra_flags, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


def wait(driver, timeout=10):
    # pages re-render lists on every pushed view: retry on replaced elements
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def visible(driver, element_id, timeout=10):
    return wait(driver, timeout).until(EC.visibility_of_element_located((By.ID, element_id)))


def gone(driver, element_id, timeout=10):
    return wait(driver, timeout).until(EC.invisibility_of_element_located((By.ID, element_id)))


def text_in(driver, element_id, text, timeout=10):
    return wait(driver, timeout).until(EC.text_to_be_present_in_element((By.ID, element_id), text))


def stale(element):
    """Wait condition: ``element`` has left the page (e.g. after a reload). Chromium 156
    reports a node from the old document with a plain WebDriverException ("Node with
    given id does not belong to the document") rather than a stale-element error."""

    def gone_from_page(_driver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is a subclass
            return True
        return False

    return gone_from_page


# --- the browser phone on the sandbox (test_browser_phone.py, test_desk_test_call_live.py)


def ari(sandbox, path):
    req = urllib.request.Request(f"{sandbox.ari_url}/ari/{path}")
    req.add_header("Authorization", "Basic " + b64encode(b"asterisk-cube:asterisk-cube").decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


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


@contextlib.contextmanager
def explained(serve, sandbox, what: str, log_lines: int = 60):
    """A wait inside that times out fails with what the page waited for and what the
    product and Asterisk did meanwhile (serve's last log lines, the channels Asterisk
    has, the browser phone's endpoint): a failure on a busy CI machine is explained by
    its own report, not guessed at from a bare selenium TimeoutException."""
    try:
        yield
    except (TimeoutException, AssertionError) as exc:
        tail = "\n".join(serve.log().splitlines()[-log_lines:])
        channels = sandbox.rx("core show channels concise")
        endpoints = sandbox.rx("pjsip show contacts")
        raise AssertionError(
            f"{what}: {exc!r}\n--- serve log (last {log_lines} lines)\n{tail}"
            f"\n--- core show channels concise\n{channels}\n--- pjsip show contacts\n{endpoints}"
        ) from exc


def submit_login(driver, url: str, username: str, password: str) -> None:
    """Fill in and send the login form at ``url``/login."""
    driver.get(url + "/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-btn").click()


def log_in(driver, url: str, username: str, password: str, landing: str | None = None) -> str:
    """Log in through the form; wait for ``landing`` (a path), or for any page but the
    login page. The path landed on."""
    submit_login(driver, url, username, password)
    if landing is None:
        wait(driver).until(lambda d: not d.current_url.endswith("/login"))
    else:
        wait(driver).until(EC.url_to_be(url + landing))
    return driver.current_url.removeprefix(url)


def ready_on_the_browser_phone(b, serve, sandbox):
    """Log in as agent01, take every line, pick the browser phone; registered, Ready."""
    log_in(b, serve.url, "agent01", "demo-password", landing="/desk")
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
