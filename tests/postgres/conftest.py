"""Tests that need a running PostgreSQL server (the ``postgres_url`` / ``pg_db`` fixtures of
tests/conftest.py; marked ``postgres``). Several run a unit test module's tests on
PostgreSQL by importing them, so tests/unit is importable from here."""

from __future__ import annotations

import sys
from pathlib import Path

UNIT = str(Path(__file__).resolve().parent.parent / "unit")
if UNIT not in sys.path:
    sys.path.append(UNIT)
