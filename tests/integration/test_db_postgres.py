"""The same models, migrations and provisioning code on a real PostgreSQL server."""

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from dbkit import call_row
from sqlalchemy import inspect, text

from asterisk_cube.cli import cli
from asterisk_cube.db.models import Base
from asterisk_cube.db.session import downgrade, make_engine, schema_status, upgrade

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_migrations_up_match_models_and_go_down(pg_db):
    upgrade(pg_db)
    engine = make_engine(pg_db)
    current, head = schema_status(engine)
    assert current == head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert len(inspect(engine).get_table_names()) == len(Base.metadata.tables) + 1
    engine.dispose()
    downgrade(pg_db, "base")
    engine = make_engine(pg_db)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()


def test_cli_provisioning_and_import_on_postgres(pg_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTERISK_CUBE_DATABASE_URL", pg_db)
    monkeypatch.setenv("ASTERISK_CUBE_CONFIG", str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text("")
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    run("db", "upgrade")
    run("demo", "load")
    csv = tmp_path / "c.csv"
    csv.write_text("phone,name\n+4791234567,Kari\n91234568,Ola\nbad,X\n")
    run("contacts", "import", "Winter offer", str(csv), ok=False)  # all or nothing
    run("contacts", "import", "Winter offer", str(csv), "--valid-only")
    contacts = json.loads(run("contacts", "list", "Winter offer", "--format", "json").output)
    assert [c["phone"] for c in contacts] == ["+4791234567", "+4791234568"]
    run("line", "add", "4721000001", ok=False)  # duplicate: one-line error, nothing written
    lines = json.loads(run("line", "list", "--format", "json").output)
    assert len(lines) == 4  # the demo's three and its test-call line
    agents = json.loads(run("agent", "list", "--format", "json").output)
    assert {a["username"] for a in agents} >= {"agent01", "supervisor", "admin"}


def test_id_allocator_takes_blocks_from_the_sequence(pg_db):
    """Two allocators (two serve nodes) and the column default never collide."""
    import datetime as dt

    from asterisk_cube.db import models as m
    from asterisk_cube.db.ids import IdAllocator
    from asterisk_cube.db.session import make_sessionmaker, transaction

    upgrade(pg_db)
    engine = make_engine(pg_db)
    sessions = make_sessionmaker(engine)
    node_a, node_b = IdAllocator(engine, block=5), IdAllocator(make_engine(pg_db), block=5)
    now = dt.datetime.now(dt.UTC)

    taken = [node_a.next(m.Call), node_b.next(m.Call), node_a.next(m.Call)]
    with transaction(sessions) as s:
        s.add_all([call_row(i, now) for i in taken])
        s.add(call_row(started_at=now))  # the column default (sequence) meanwhile
        s.flush()
    with transaction(sessions) as s:
        ids = sorted(s.scalars(text("SELECT id FROM calls")))
    assert len(set(ids)) == 4 and set(taken) <= set(ids)
    assert len(set(taken)) == 3
