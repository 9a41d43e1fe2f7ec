"""Structured log lines: one line per event, key=value or JSON."""

import io
import json
import logging

import pytest

from asterisk_cube import logs


@pytest.fixture
def capture():
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    logs.configure("DEBUG", "kv", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if getattr(handler, "_asterisk_cube_handler", False):
            root.removeHandler(handler)
    root.setLevel(old_level)


def test_key_value_line(capture):
    logs.get_logger("asterisk_cube.test").info(
        "stasis_start", channel="17.3", args=["inbound", "3"], caller=None, ok=True
    )
    line = capture.getvalue()
    assert line.count("\n") == 1
    assert " level=info logger=asterisk_cube.test event=stasis_start channel=17.3" in line
    assert "args=inbound,3 caller=- ok=true" in line
    assert line.split()[0].endswith("Z")


def test_values_with_blanks_quotes_and_newlines_are_quoted(capture):
    logs.get_logger("t").warning("x", reason='said "no"\nthen left', empty="")
    line = capture.getvalue()
    assert line.count("\n") == 1
    assert 'reason="said \\"no\\"\\nthen left"' in line
    assert 'empty=""' in line


def test_exception_stays_on_one_line(capture):
    try:
        raise ValueError("boom")
    except ValueError:
        logs.get_logger("t").exception("handler_failed", channel="c1")
    line = capture.getvalue()
    assert line.count("\n") == 1
    assert 'exc="ValueError: boom"' in line
    assert "traceback=" in line and "\\n" in line


def test_plain_library_records_become_events(capture):
    logging.getLogger("somelib").warning("disk %s full", "/var")
    assert 'logger=somelib event="disk /var full"' in capture.getvalue()


def test_level_filters(capture):
    logs.configure("WARNING", "kv", stream=capture)
    log = logs.get_logger("t")
    log.info("hidden")
    log.error("shown")
    assert "hidden" not in capture.getvalue()
    assert "event=shown" in capture.getvalue()
    # noisy libraries never go below WARNING
    assert logging.getLogger("httpx").level == logging.WARNING


def test_json_format(capture):
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    logs.get_logger("t").info("agi_session", route="ping", ms=1.5, args=("a", "b"))
    data = json.loads(stream.getvalue())
    assert data["event"] == "agi_session"
    assert data["level"] == "info"
    assert data["route"] == "ping" and data["ms"] == 1.5 and data["args"] == ["a", "b"]


def test_configure_replaces_its_own_handler_only(capture):
    before = len(logging.getLogger().handlers)
    logs.configure("INFO", "kv", stream=capture)
    assert len(logging.getLogger().handlers) == before


def test_bad_level_or_format():
    with pytest.raises(ValueError):
        logs.configure("LOUD")
    with pytest.raises(ValueError):
        logs.configure("INFO", "xml")
    assert logs.parse_level("warn") == logging.WARNING
