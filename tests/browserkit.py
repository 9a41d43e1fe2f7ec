"""Headless Chromium for browser tests (Debian's chromium + chromedriver via Selenium).

Playwright's own browser download cannot be reached here, so tests drive the Debian
binary. The flags keep Chromium from reaching for the network at start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
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
