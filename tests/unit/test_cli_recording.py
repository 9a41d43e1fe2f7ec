"""``asterisk-cube recording``: policies and retention from the CLI (issue #17)."""

import pytest
from test_cli import rows, run  # noqa: F401 - the CLI fixture and its reader


def test_set_list_and_retention(run):  # noqa: F811
    run("campaign", "add", "Hotline", "--direction", "inbound")
    run("line", "add", "4721000001")
    out = run("recording", "set", "--line", "4721000001", "--mode", "all", "--consent", "beep")
    assert out.output.strip() == "recording for line 4721000001: all, consent beep, kept 90 days"
    run("recording", "set", "--campaign", "Hotline", "--mode", "on_demand", "--retention", "30")
    run("recording", "retention", "14")
    assert rows(run, "recording", "list") == [
        {
            "scope": "line",
            "name": "4721000001",
            "mode": "all",
            "consent": "beep",
            "announcement": None,
            "retention_days": 14,
        },
        {
            "scope": "campaign",
            "name": "Hotline",
            "mode": "on_demand",
            "consent": "none",
            "announcement": None,
            "retention_days": 14,
        },
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--line", "4721000001", "--retention", "0"], "retention must be 1..3650 days"),
        (["--line", "4799999999", "--mode", "all"], "no line '4799999999'"),
        (["--line", "4721000001", "--consent", "announcement"], "needs --announcement MEDIA"),
        (["--mode", "all"], "give exactly one of a line (DID) or a campaign"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(run, args, message):  # noqa: F811
    run("line", "add", "4721000001")
    result = run("recording", "set", *args, ok=False)
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert rows(run, "recording", "list") == []
