"""The panel's listen / whisper / barge / record buttons (issue #17) in real headless
Chromium, against the panel served around a real distributor (tests/fakes/panel.py, no
Asterisk: the audio routes answer without ARI). What the buttons do on a real call is
proven on the sandbox in tests/integration/test_audio_live.py; here: the buttons are on
every call's row, only usable while the call is connected, a refused action is shown on
the page, and an agent's browser is refused (403) by the audio API."""

from __future__ import annotations

import json

import pytest
from fakes.panel import LivePanel
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from test_panel_browser import log_in, make_browser, text_of, wait

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LivePanel(tmp_path_factory.mktemp("audio-panel")).start()
    yield server
    server.stop()


@pytest.fixture
def browser(tmp_path):
    driver = make_browser(tmp_path / "profile")
    yield driver
    driver.quit()


def test_call_rows_have_listen_whisper_barge_and_record(browser, live):
    sales = live.lines["4721000002"]
    log_in(browser, live, "siri", "siri-secret-1")
    call = live.call(live.desk.call_arrived, "ch-a1", sales, "+4791113333")
    row = f'#calls-body tr[data-call="{call}"]'
    wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, row)))
    buttons = {
        b.get_attribute("class").split()[-1]: b
        for b in browser.find_elements(By.CSS_SELECTOR, row + " .audio button")
    }
    assert sorted(buttons) == ["barge-btn", "listen-btn", "record-btn", "whisper-btn"]
    assert [buttons[k].text for k in ("listen-btn", "whisper-btn", "barge-btn")] == [
        "Listen",
        "Whisper",
        "Barge",
    ]
    # a waiting call cannot be listened to yet
    assert not any(b.is_enabled() for b in buttons.values())
    browser.save_screenshot("/tmp/panel-audio-buttons.png")
    # forced through anyway: the server refuses and the page says why
    browser.execute_script(
        "document.querySelector(arguments[0]).disabled = false;", row + " .listen-btn"
    )
    browser.find_element(By.CSS_SELECTOR, row + " .listen-btn").click()
    flash = wait(browser).until(EC.visibility_of_element_located((By.ID, "flash")))
    assert "That call is not connected now." in flash.text
    assert not browser.find_element(By.ID, "listen-bar").is_displayed()
    live.call(live.desk.caller_left, "ch-a1")
    wait(browser).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, row)))


def test_an_agent_is_refused_the_audio_api(browser, live):
    log_in(browser, live, "kari", "kari-secret-1", then="/desk")
    # the role is checked before anything else: no CSRF token needed to be refused
    script = """
        const done = arguments[arguments.length - 1];
        const post = (path) => fetch(path, {method: 'POST', body: '{}',
                                            headers: {'Content-Type': 'application/json'}});
        Promise.all([
          post('/api/panel/calls/1/listen'),
          post('/api/panel/calls/1/barge'),
          fetch('/api/recordings?call_id=1'),
          fetch('/recordings/1/file'),
        ]).then(rs => Promise.all(rs.map(r => r.text().then(t => [r.status, t]))))
          .then(x => done(JSON.stringify(x)));
    """
    answers = json.loads(browser.execute_async_script(script))
    assert [status for status, _ in answers] == [403, 403, 403, 403]
    assert all(json.loads(body)["error"] == "forbidden" for _, body in answers)
    assert text_of(browser, "body")  # the desk itself still works
