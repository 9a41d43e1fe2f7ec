"""Every character the web UI shows has a glyph in the fonts installed here (fontconfig,
which headless Chromium uses): before, the panel's "On a call ⛔" showed a missing-glyph box,
as on any system without an emoji font. Markers are drawn in CSS instead
(tests/browser/test_panel_blocked_marker.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import asterisk_cube

PACKAGE = Path(asterisk_cube.__file__).parent
SHOWN = [
    *PACKAGE.glob("web/static/*.js"),
    *PACKAGE.glob("web/static/*.css"),
    *PACKAGE.glob("web/templates/*.html"),
    *PACKAGE.glob("web/*.py"),
    *PACKAGE.glob("locale/*/LC_MESSAGES/*.po"),
]


def has_glyph(ch: str) -> bool:
    out = subprocess.run(
        ["fc-list", f":charset={ord(ch):x}", "family"], capture_output=True, text=True, check=True
    )
    return bool(out.stdout.strip())


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig (fc-list) not installed")
def test_every_character_of_the_web_ui_has_a_glyph():
    if not has_glyph("A"):
        pytest.skip("no fonts installed")
    where: dict[str, set[str]] = {}
    for path in SHOWN:
        for ch in set(path.read_text(encoding="utf-8")):
            if ord(ch) > 0x7F:
                where.setdefault(ch, set()).add(path.name)
    assert where, SHOWN  # the files are there
    missing = {
        f"U+{ord(ch):04X} {ch}": sorted(files) for ch, files in where.items() if not has_glyph(ch)
    }
    assert not missing, f"no installed font has these (a box in the browser): {missing}"
