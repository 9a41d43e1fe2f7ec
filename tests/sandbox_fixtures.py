"""Sandbox fixtures (a plugin of tests/conftest.py): the sandbox Asterisk for the session.

``sandbox``: instance "test" on base port 25000, built on first use (needs root: debootstrap,
chroot, mount), started once per session, stopped at the end. One test session at a time owns an
instance (the tests rewrite its dialplan): a second concurrent session fails at once and says so;
run it on another instance with ASTERISK_CUBE_TEST_BASE_PORT=N (instance "test-N"; it spans
ports N+38 .. N+4300 with the SIPp phones).
Use ``sandbox.env()`` to point asterisk-cube at it, ``sandbox.rx("...")`` for the Asterisk CLI,
and the SIPp phones in ``sippkit``.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import time
from collections.abc import Callable, Iterator

import pytest

from asterisk_cube.sandbox import SandboxInstance
from asterisk_cube.sandbox_host import SandboxError, ensure_host_tools, sandbox_root

DEFAULT_BASE_PORT = 25000
TEST_BASE_PORT = int(os.environ.get("ASTERISK_CUBE_TEST_BASE_PORT", str(DEFAULT_BASE_PORT)))
TEST_INSTANCE = "test" if TEST_BASE_PORT == DEFAULT_BASE_PORT else f"test-{TEST_BASE_PORT}"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxInstance]:
    if os.geteuid() != 0:
        pytest.fail("the sandbox Asterisk needs root (debootstrap, chroot, mount): run as root")
    inst = SandboxInstance(TEST_INSTANCE, TEST_BASE_PORT)
    lock_path = sandbox_root().parent / f".{TEST_INSTANCE}.session.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lock_path, "a+")  # noqa: SIM115 - held for the whole session
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "?"
        lock.close()
        pytest.fail(
            f"sandbox instance {TEST_INSTANCE!r} is in use by another test session (pid {owner}); "
            "to run tests in parallel set ASTERISK_CUBE_TEST_BASE_PORT to a free base, e.g. 27000"
        )
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    try:
        ensure_host_tools("sipp")
        if inst.is_running():  # left over from an interrupted session: start clean
            inst.down()
        started = time.monotonic()
        ari_seconds = inst.up(reset_dialplan=True)
    except SandboxError as exc:
        lock.close()
        pytest.fail(f"sandbox Asterisk: {exc}")
    print(
        f"\nsandbox {TEST_INSTANCE!r} up in {time.monotonic() - started:.1f} s "
        f"(ARI answered {ari_seconds:.2f} s after start), base port {TEST_BASE_PORT}"
    )
    # backstop: the finalizer below stops it (also on Ctrl-C/SIGTERM, see conftest.py); if
    # the run dies before finalizers run, at exit
    atexit.register(inst.down)
    try:
        yield inst
    finally:
        try:
            inst.down()
            atexit.unregister(inst.down)
        finally:
            lock.close()


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
