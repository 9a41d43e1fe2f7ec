"""Navigation by role (issue #16) in real headless Chromium: supervisors and admins land
on the live panel after login, agents on their desk; every page (desk, panel, reports)
has the header navigation of the user's role and a Log out that ends the session."""

from __future__ import annotations

import browserkit
import pytest
from browserkit import SHOTS, gone, visible, wait
from fakes.panel import LivePanel
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from asterisk_cube.web.reports import Reports

pytestmark = pytest.mark.browser


class PanelAndReports(LivePanel):
    def more_routes(self):
        return Reports(self.sessions).routes()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = PanelAndReports(tmp_path_factory.mktemp("nav")).start()
    yield server
    server.stop()


def log_in(driver, live, username, password):
    return browserkit.log_in(driver, live.url, username, password)


def log_out(driver, live):
    driver.find_element(By.ID, "logout-btn").click()
    wait(driver).until(EC.url_to_be(live.url + "/login"))
    driver.get(live.url + "/panel")
    assert driver.current_url.endswith("/login")  # the session is over


@pytest.mark.parametrize(
    "username,password", [("siri", "siri-secret-1"), ("adam", "adam-secret-1")]
)
def test_supervisors_and_admins_land_on_the_panel_with_every_page_linked(
    browser, live, username, password
):
    assert log_in(browser, live, username, password) == "/panel"
    for page in ("desk", "reports", "panel"):
        browser.get(f"{live.url}/{page}")
        wait(browser).until(EC.visibility_of_element_located((By.ID, "top-nav")))
        links = browser.find_elements(By.CSS_SELECTOR, "#top-nav a")
        assert [a.get_attribute("id") for a in links] == ["nav-panel", "nav-reports", "nav-desk"]
        current = browser.find_element(By.CSS_SELECTOR, '#top-nav a[aria-current="page"]')
        assert current.get_attribute("id") == f"nav-{page}"
        assert browser.find_element(By.ID, "logout-btn").is_displayed()
    browser.find_element(By.ID, "nav-reports").click()  # from the panel
    wait(browser).until(EC.url_contains("/reports"))
    browser.save_screenshot(str(SHOTS / f"nav-reports-{username}.png"))
    log_out(browser, live)  # from the reports page, which had no Log out before


def test_an_agent_lands_on_the_desk_and_sees_only_the_desk(browser, live):
    assert log_in(browser, live, "kari", "kari-secret-1") == "/desk"
    links = browser.find_elements(By.CSS_SELECTOR, "#top-nav a")
    assert [a.get_attribute("id") for a in links] == ["nav-desk"]
    visible(browser, "lines-dialog")  # start of work (modal): take the lines offered
    browser.find_element(By.ID, "lines-ok").click()
    gone(browser, "lines-dialog")
    browser.save_screenshot(str(SHOTS / "nav-desk-agent.png"))
    log_out(browser, live)
