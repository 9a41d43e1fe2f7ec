"""The dialer reads time only through its injected clocks (issue #13, #11 item 11):
``DialerState.monotonic`` for every duration, deadline and budget, ``DialerState.now`` for
the wall clock. A direct ``time.monotonic()`` would put a unit test of timing logic back
on the machine's clock (the fake loop clock could not drive it)."""

import ast
from pathlib import Path

import asterisk_cube.dialer as dialer_pkg

#: owner -> the calls on it that read a clock (``dt.time(0)`` builds a time, reads none)
CLOCK_READS = {
    "time": {"monotonic", "time", "perf_counter", "monotonic_ns", "time_ns"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
    "loop": {"time"},
}
#: (module, function called): the only places that read a real clock, each on purpose
ALLOWED = {
    ("state.py", "now"),  # the wall clock's default, when none is injected
    ("state.py", "perf_counter"),  # the DB-on-the-loop probe measures real work
    ("pacer.py", "monotonic"),  # Learning.estimates(now=None) fallback; the dialer passes now
    ("callbacks.py", "now"),  # desk/CLI services: ``now`` is an argument, this its default
}


def clock_reads(path: Path) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        owner = node.func.value
        owner_name = (
            owner.id
            if isinstance(owner, ast.Name)
            else owner.attr
            if isinstance(owner, ast.Attribute)
            else ""
        )
        if name in CLOCK_READS.get(owner_name, ()):
            found.append((path.name, name, node.lineno))
    return found


def test_the_dialer_reads_time_only_through_its_injected_clocks():
    package = Path(dialer_pkg.__file__).parent
    reads = [r for path in sorted(package.glob("*.py")) for r in clock_reads(path)]
    assert reads, "the check found no clock read at all: it no longer sees them"
    stray = [r for r in reads if (r[0], r[1]) not in ALLOWED]
    assert not stray, f"clock reads outside the injected clocks: {stray}"
