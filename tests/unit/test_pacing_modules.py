"""The pacing core stays split by concept and pure (issue 18)."""

from __future__ import annotations

import ast
from pathlib import Path

import asterisk_cube.core as core
from asterisk_cube.core import pacing, pacing_learn, pacing_model

MODULES = sorted(Path(core.__file__).parent.glob("pacing*.py"))
#: I/O, clocks and randomness: the pacer gets time and outcomes as arguments
IMPURE = {"time", "datetime", "random", "os", "asyncio", "socket", "sqlalchemy", "logging"}


def test_the_pacing_core_is_split_into_modules_under_600_lines():
    assert {p.stem for p in MODULES} >= {"pacing", "pacing_learn", "pacing_model"}
    for path in MODULES:
        assert len(path.read_text().splitlines()) <= 600, path.name


def test_the_pacing_core_reads_no_clock_and_does_no_io():
    for path in MODULES:
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        assert not names & IMPURE, (path.name, names & IMPURE)


def test_callers_keep_one_import():
    """``core.pacing`` re-exports the learners and the model: callers need no other."""
    for module in (pacing_learn, pacing_model):
        for name in module.__all__:
            assert getattr(pacing, name) is getattr(module, name), name
