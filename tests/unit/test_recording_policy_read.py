"""Issue #19: the recorder reads a bridged call's recording policy in one SQL statement on
a plain connection (it was three ORM reads in a session per call), with the same answers."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from test_recordings_policy import ids

from asterisk_cube.audio.recorder import Recorder
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import recordings as r


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cube.db'}"
    else:
        url = request.getfixturevalue("pg_db")
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "Winter", direction="inbound")
        p.add_line(s, "4721000001", "Support")
        p.add_line(s, "4721000002", "Hotline", campaign=camp.name)
    yield sessions
    sessions.kw["bind"].dispose()


def test_one_statement_per_policy_read_with_the_same_answers(sessions):
    lines, camp = ids(sessions)
    with transaction(sessions) as s:
        r.set_policy(s, campaign="Winter", mode="all", consent="beep", retention_days=30)
    recorder = Recorder(sessions, lambda: None)
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        hot = recorder._policy(lines["4721000002"], None)  # the hotline: its campaign's
        plain = recorder._policy(lines["4721000001"], None)  # no policy: off
        dialer = recorder._policy(None, camp)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 3, statements  # one per read
    assert (hot.mode, hot.consent, hot.retention_days, hot.campaign_id) == (
        "all",
        "beep",
        30,
        camp,
    )
    assert (plain.mode, plain.line_id, plain.campaign_id) == ("off", lines["4721000001"], None)
    assert (dialer.mode, dialer.line_id, dialer.campaign_id) == ("all", None, camp)
    with transaction(sessions) as s:
        r.set_policy(s, line="4721000002", mode="on_demand", retention_days=5)
    own = recorder._policy(lines["4721000002"], None)  # the line's own wins
    assert (own.mode, own.retention_days, own.campaign_id) == ("on_demand", 5, camp)
