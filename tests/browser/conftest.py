"""Browser tests share one headless Chromium fixture (see tests/browserkit.py)."""

from pathlib import Path

import pytest
from browserkit import CHROMEDRIVER, CHROMIUM, MEDIA_FLAGS, chrome


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium / chromedriver missing: run ./scripts/setup")
    driver = chrome(tmp_path / "profile")
    yield driver
    driver.quit()


@pytest.fixture
def media_browser(tmp_path):
    driver = chrome(tmp_path / "profile", MEDIA_FLAGS)
    yield driver
    driver.quit()
