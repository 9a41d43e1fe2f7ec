"""The entry route's batched verdict writer on PostgreSQL (the SQLite case is in
tests/unit/test_agi_entry.py)."""

from __future__ import annotations

import pytest
from test_agi_entry import written_verdicts_round_trip

from asterisk_cube.db.session import make_engine, make_sessionmaker, upgrade


@pytest.mark.integration
async def test_verdict_rows_keep_instant_caller_and_reason_on_postgres(postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        await written_verdicts_round_trip(make_sessionmaker(engine))
    finally:
        engine.dispose()
