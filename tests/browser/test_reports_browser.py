"""Reports in real headless Chromium (Debian's chromium + chromedriver, Selenium) against
uvicorn serving /reports over the generated history with known totals
(tests/report_history.py): a supervisor picks a report, period and grouping in the form;
every figure of the table, the figures the Chart.js chart holds (read back from the chart
object) and the CSV the page's link downloads equal the expected figures; the canvas is
painted; an agent gets 403. Screenshots go to $DESK_SCREENSHOTS (default /tmp)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from types import SimpleNamespace

import browserkit
import pytest
import report_history as RH
from browserkit import SHOTS, visible, wait
from fakes.web import LiveServer, demo_for, make_accounts, make_settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.reports import Reports

pytestmark = pytest.mark.browser


class LiveReports(LiveServer):
    """The desktop mount with the reports' routes on uvicorn in a thread, over the history."""

    what = "reports"

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path
        self.sessions, self.ids = make_accounts(path)
        with transaction(self.sessions) as s:
            self.history = RH.build_history(s)

    async def _serve(self) -> None:
        hub = EventHub()
        settings = make_settings(self.path)
        mount = desktop_mount(
            settings,
            demo_for(hub, self.ids),
            hub,
            self.sessions,
            extra_routes=Reports(self.sessions).routes(),
        )
        state = SimpleNamespace(hub=hub, web=None)
        app = create_app(settings, state, extra_routes=[mount])
        await self._run_server(app, state)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveReports(tmp_path_factory.mktemp("reports")).start()
    yield server
    server.stop()


def log_in(driver, live, username, password):
    browserkit.log_in(driver, live.url, username, password)


def text(value) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def set_value(driver, element_id, value):
    driver.execute_script(
        "var el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('change', {bubbles: true}));",
        element_id,
        value,
    )


def table_rows(driver) -> list[dict[str, str]]:
    return driver.execute_script(
        """
        return Array.from(document.querySelectorAll('#report-table tbody tr')).map(function (tr) {
          var row = {};
          tr.querySelectorAll('td').forEach(function (td) {
            row[td.dataset.col] = td.textContent;
          });
          return row;
        });
        """
    )


def chart_state(driver) -> dict:
    return driver.execute_script(
        """
        var canvas = document.getElementById('report-chart');
        var chart = Chart.getChart(canvas);
        var ctx = canvas.getContext('2d');
        var px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        var painted = 0;
        for (var i = 3; i < px.length; i += 4) { if (px[i] > 0) { painted++; } }
        return {
          type: chart.config.type,
          labels: chart.data.labels,
          datasets: chart.data.datasets.map(function (d) {
            return {label: d.label, data: d.data};
          }),
          painted: painted,
          width: canvas.width,
        };
        """
    )


def download(driver, href) -> dict:
    return driver.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(function (r) {
          return r.text().then(function (body) {
            done({status: r.status, type: r.headers.get('content-type'),
                  disposition: r.headers.get('content-disposition'), body: body});
          });
        }).catch(function (e) { done({status: -1, body: String(e)}); });
        """,
        href,
    )


def check_page(driver, expected: dict, key_cols, measures, label_of):
    """Table, chart and CSV against ``expected`` ({key tuple: row})."""
    want = {tuple(text(k) for k in key): row for key, row in expected.items()}
    rows = table_rows(driver)
    assert len(rows) == len(want)
    order = []
    for row in rows:
        key = tuple(row[k] for k in key_cols)
        assert key in want, key
        order.append(key)
        exp = want[key]
        for col, value in row.items():
            assert value == text(exp[col]), (key, col)
        assert set(row) == {c for c in exp if not c.endswith("_id")}

    chart = chart_state(driver)
    assert chart["painted"] > 1000 and chart["width"] > 100  # the canvas is drawn on
    assert chart["labels"] == [label_of(want[k]) for k in order]
    assert [d["label"] for d in chart["datasets"]] == list(measures)
    for ds in chart["datasets"]:
        assert ds["data"] == [want[k][ds["label"]] for k in order], ds["label"]

    href = driver.find_element(By.ID, "csv-link").get_attribute("href")
    got = download(driver, href)
    assert got["status"] == 200, got
    assert got["type"].startswith("text/csv") and got["disposition"].startswith("attachment")
    csv_rows = list(csv.DictReader(io.StringIO(got["body"])))
    assert len(csv_rows) == len(want)
    for row in csv_rows:
        key = tuple(row[k] for k in key_cols)
        assert row == {c: text(v) for c, v in want[key].items()}, key
    return chart


def test_supervisor_picks_a_report_and_every_figure_matches(browser, live):
    log_in(browser, live, "siri", "siri-secret-1")
    browser.get(live.url + "/reports")
    visible(browser, "report-form")

    # choose the outbound report: the page reloads with its grouping keys
    Select(browser.find_element(By.ID, "f-report")).select_by_value("outbound")
    visible(browser, "g-campaign")
    assert browser.find_element(By.ID, "g-campaign").is_selected()
    # the period, and per day instead of per campaign
    set_value(browser, "f-from", RH.FIRST.isoformat())
    set_value(browser, "f-to", RH.LAST.isoformat())
    set_value(browser, "f-zone", RH.ZONE)
    browser.find_element(By.ID, "g-campaign").click()
    browser.find_element(By.ID, "g-day").click()
    browser.find_element(By.ID, "f-submit").click()
    visible(browser, "report-table")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#report-chart")))
    wait(browser).until(
        lambda d: d.execute_script(
            "return !!document.getElementById('report-chart').getAttribute('data-drawn')"
        )
    )

    expected = live.history.expected_outbound(("day",))
    chart = check_page(
        browser,
        expected,
        ("day",),
        ("attempts", "reached", "abandoned"),
        lambda row: row["day"].isoformat(),
    )
    assert chart["type"] == "line"  # over time only
    # a hand check: attempts per day are 20 + d (Spring) + 8 + d (Autumn)
    for row in table_rows(browser):
        d = RH.DAYS.index(dt.date.fromisoformat(row["day"]))
        assert row["attempts"] == str(28 + 2 * d)
    browser.save_screenshot(str(SHOTS / "reports-outbound.png"))

    # inbound per line over the same period (a bar chart), straight from a URL
    browser.get(
        f"{live.url}/reports?report=inbound&from={RH.FIRST}&to={RH.LAST}&zone={RH.ZONE}&group=line"
    )
    visible(browser, "report-table")
    chart = check_page(
        browser,
        live.history.expected_inbound(("line",)),
        ("line",),
        ("offered", "answered", "abandoned"),
        lambda row: f"{row['line_name']}",
    )
    assert chart["type"] == "bar"
    browser.save_screenshot(str(SHOTS / "reports-inbound.png"))


def test_bad_date_shows_one_line(browser, live):
    log_in(browser, live, "siri", "siri-secret-1")
    browser.get(f"{live.url}/reports?report=inbound&from=2026-02-30&to=2026-03-01")
    assert "from must be a date" in visible(browser, "report-error").text


def test_agent_cannot_open_reports(browser, live):
    log_in(browser, live, "kari", "kari-secret-1")
    browser.get(live.url + "/reports")
    assert "report-form" not in browser.page_source
    status = download(browser, live.url + "/reports/export.csv")["status"]
    assert status == 403
