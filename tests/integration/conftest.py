"""Integration fixtures: the sandbox Asterisk for the whole session, and test dialplan.

``sandbox``: instance "test" on base port 25000 (env ASTERISK_CUBE_TEST_BASE_PORT), built on
first use (needs root: debootstrap, chroot, mount), started once per session, stopped at the end.
Use ``sandbox.env()`` to point asterisk-cube at it, ``sandbox.rx("...")`` for the Asterisk CLI,
and the SIPp phones in ``sippkit``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from asterisk_cube.sandbox import SandboxError, SandboxInstance, ensure_host_tools

TEST_BASE_PORT = int(os.environ.get("ASTERISK_CUBE_TEST_BASE_PORT", "25000"))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxInstance]:
    if os.geteuid() != 0:
        pytest.fail("the sandbox Asterisk needs root (debootstrap, chroot, mount): run as root")
    inst = SandboxInstance("test", TEST_BASE_PORT)
    try:
        ensure_host_tools("sipp")
        if inst.is_running():  # left over from an interrupted session: start clean
            inst.down()
        started = time.monotonic()
        ari_seconds = inst.up(reset_dialplan=True)
    except SandboxError as exc:
        pytest.fail(f"sandbox Asterisk: {exc}")
    print(
        f"\nsandbox 'test' up in {time.monotonic() - started:.1f} s "
        f"(ARI answered {ari_seconds:.2f} s after start), base port {TEST_BASE_PORT}"
    )
    try:
        yield inst
    finally:
        inst.down()


@pytest.fixture
def test_dialplan(sandbox: SandboxInstance) -> Iterator[Callable[[str], None]]:
    """``load(text)``: replace the generated dialplan file with ``text`` and reload it.

    The file's previous content is restored (and reloaded) after the test."""
    path = sandbox.dialplan_path
    before = path.read_text()

    def load(text: str) -> None:
        path.write_text(text)
        out = sandbox.rx("dialplan reload")
        assert "Dialplan reloaded" in out, out

    yield load
    path.write_text(before)
    sandbox.rx("dialplan reload")
