"""Data migrations on SQLite and PostgreSQL: rows written by older code come out right."""

import datetime as dt

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import (
    alembic_config,
    downgrade,
    make_engine,
    make_sessionmaker,
    transaction,
    upgrade,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cube.db'}"
    return request.getfixturevalue("pg_db")


def _before(revision: str) -> str:
    """The revision a migration applies on top of (whatever else lands in between)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_revision(revision).down_revision


def test_24_00_stored_as_23_59_59_by_old_code_becomes_midnight(any_db):
    # Rows as older code wrote them, inserted through today's models (the schema is the same),
    # then the database is taken back to just before the migration and up again.
    upgrade(any_db)
    engine = make_engine(any_db)
    old_end = dt.time(23, 59, 59)  # how "24:00" was stored before 0003_midnight
    with transaction(make_sessionmaker(engine)) as s:
        client = m.Client(name="Døgnvakt AS", own_numbers=[])
        client.hours = [m.OpeningHours(weekday=d, opens=dt.time(0), closes=old_end) for d in (0, 1)]
        client.hours.append(m.OpeningHours(weekday=2, opens=dt.time(8), closes=dt.time(16)))
        client.special_days = [
            m.SpecialDay(
                day=dt.date(2026, 12, 24),
                kind=m.SpecialDayKind.SPECIAL,
                opens=dt.time(9),
                closes=old_end,
            )
        ]
        campaign = m.Campaign(name="Kveld", direction=m.Direction.OUTBOUND)
        campaign.windows = [m.CallingWindow(weekday=0, starts=dt.time(18), ends=old_end)]
        s.add_all([client, campaign])
    engine.dispose()
    before = _before("0003_midnight")
    downgrade(any_db, before)

    upgrade(any_db)
    engine = make_engine(any_db)
    with transaction(make_sessionmaker(engine)) as s:
        closes = sorted((h.weekday, h.closes) for h in s.scalars(select(m.OpeningHours)))
        assert closes == [(0, dt.time(0)), (1, dt.time(0)), (2, dt.time(16))]
        assert s.scalar(select(m.SpecialDay.closes)) == dt.time(0)
        assert s.scalar(select(m.CallingWindow.ends)) == dt.time(0)
    engine.dispose()

    downgrade(any_db, before)
    engine = make_engine(any_db)
    with engine.connect() as conn:
        assert conn.scalar(select(m.CallingWindow.ends)) == old_end
    engine.dispose()
