"""Every benchmark in bench/ still imports: the benches run by hand, so a moved name (as
when sandbox.py was split) would otherwise only show the next time someone measures."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    "name",
    sorted(p.stem for p in BENCH.glob("*.py"))
    + sorted(p.parent.name for p in BENCH.glob("*/__init__.py")),
)
def test_the_bench_imports(name):
    importlib.import_module(f"bench.{name}")
