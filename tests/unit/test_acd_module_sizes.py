"""Issue #13: acd/ is small modules around one state owner, and ari/inbound.py stays a
thin translator. No module there grows past 600 lines again unnoticed."""

from __future__ import annotations

from pathlib import Path

import asterisk_cube

PACKAGE = Path(asterisk_cube.__file__).parent
LIMIT = 600


def test_acd_and_the_inbound_adapter_stay_small():
    modules = [*sorted(PACKAGE.glob("acd/*.py")), PACKAGE / "ari" / "inbound.py"]
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in modules}
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}


def test_no_module_of_the_package_grows_past_the_limit():
    """The same bound for every module: one concept per module, readable in one sitting."""
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
        for p in sorted(PACKAGE.rglob("*.py"))
    }
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}


def test_nothing_outside_acd_reads_the_distributors_raw_call_dicts():
    """Adapters ask ``AcdState``'s queries (``call``, ``knows_channel``, ``waiting``...)."""
    offenders = []
    for path in sorted((PACKAGE / "ari").glob("*.py")) + sorted((PACKAGE / "web").glob("*.py")):
        text = path.read_text()
        for needle in ("distributor.calls", "distributor.by_channel", "d.by_channel", "._waiting("):
            if needle in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {needle}")
    assert offenders == []
