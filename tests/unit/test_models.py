import datetime as dt

import pytest
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def test_times_come_back_as_aware_utc(sessions):
    oslo = dt.timezone(dt.timedelta(hours=1))
    at = dt.datetime(2026, 11, 23, 15, 0, tzinfo=oslo)
    with transaction(sessions) as s:
        s.add(
            m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.SERVICE,
                state=m.CallState.WAITING,
                started_at=at,
                queued_at=at,
            )
        )
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert call.queued_at == at
        assert call.queued_at.tzinfo == dt.UTC
        assert call.queued_at.hour == 14


def test_naive_datetimes_are_refused(sessions):
    with pytest.raises(Exception, match="naive datetime"), transaction(sessions) as s:
        s.add(
            m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.SERVICE,
                state=m.CallState.WAITING,
                started_at=dt.datetime(2026, 1, 1),
            )
        )


def test_line_cannot_belong_to_campaign_and_client(sessions):
    with transaction(sessions) as s:
        camp = m.Campaign(name="C", direction=m.Direction.INBOUND)
        client = m.Client(name="K")
        s.add_all([camp, client])
    with pytest.raises(Exception, match="CHECK constraint failed"), transaction(sessions) as s:
        s.add(m.Line(did="123", name="x", campaign_id=camp.id, client_id=client.id))


def test_deleting_an_agent_cascades_to_links_and_status(sessions):
    with transaction(sessions) as s:
        line = m.Line(did="123", name="x")
        agent = m.Agent(username="a", name="A")
        s.add_all([line, agent])
        s.flush()
        s.add_all(
            [m.AgentLine(agent_id=agent.id, line_id=line.id), m.AgentStatus(agent_id=agent.id)]
        )
    with transaction(sessions) as s:
        s.delete(s.scalar(select(m.Agent)))
    with transaction(sessions) as s:
        assert s.scalars(select(m.AgentLine)).all() == []
        assert s.scalars(select(m.AgentStatus)).all() == []


def test_enums_are_checked_by_the_database(sessions):
    with pytest.raises(Exception), transaction(sessions) as s:  # noqa: B017
        s.connection().exec_driver_sql(
            "INSERT INTO agents (username, name, role, language, active, created_at) "
            "VALUES ('x', 'x', 'superhero', 'en', 1, '2026-01-01')"
        )
