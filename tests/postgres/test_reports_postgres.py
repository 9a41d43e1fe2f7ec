"""The report tests of tests/unit/test_reports.py, every one of them, on PostgreSQL: the same
generated history, the same expected figures, the same CLI output checks."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy.engine import make_url
from test_reports import *  # noqa: F403 (the tests themselves)
from test_reports import Db

pytestmark = pytest.mark.postgres

# only the tests that read the database (through db or run): the others need no PostgreSQL
for _name, _test in list(globals().items()):
    if _name.startswith("test_") and not {"db", "run"} & set(inspect.signature(_test).parameters):
        del globals()[_name]


@pytest.fixture(scope="module")
def reports_pg_db(postgres_url) -> Db:
    import psycopg

    base = make_url(postgres_url)
    with psycopg.connect(
        host=base.host, port=base.port, user=base.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS cube_reports")
        conn.execute("CREATE DATABASE cube_reports")
    db = Db(base.set(database="cube_reports").render_as_string(hide_password=False))
    yield db
    db.engine.dispose()


@pytest.fixture
def db(reports_pg_db) -> Db:
    return reports_pg_db
