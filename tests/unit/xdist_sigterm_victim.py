"""Run only by test_xdist_sigterm.py (not collected: no test_ prefix): two tests that
wait, in two xdist workers, each with a finalizer that leaves a mark."""

import os
import time
from pathlib import Path

import pytest

OUT = Path(os.environ.get("CUBE_XDIST_PROBE_DIR", "/nonexistent"))


@pytest.fixture
def marked():
    yield
    (OUT / f"finalized-{os.getpid()}").write_text("ok")


@pytest.mark.parametrize("n", range(2))
def test_waits(marked, n):
    (OUT / f"started-{os.getpid()}").write_text("ok")
    time.sleep(120)
