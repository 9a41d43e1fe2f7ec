"""The throwaway PostgreSQL server of the test session works."""

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration


def test_postgres_fixture_gives_a_working_database(postgres_url):
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            version = conn.execute(text("SHOW server_version")).scalar()
            assert int(version.split(".")[0]) >= 15
    finally:
        engine.dispose()
