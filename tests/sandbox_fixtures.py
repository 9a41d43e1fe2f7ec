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
import json
import os
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator

import pytest

from asterisk_cube.sandbox import PASSWORD, USERNAME, SandboxInstance
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


def _ari(sandbox: SandboxInstance, method: str, path: str) -> object:
    req = urllib.request.Request(f"{sandbox.ari_url}/ari/{path}", method=method)
    token = b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # gone meanwhile
            return None
        raise
    return json.loads(body) if body else None


def leftovers(sandbox: SandboxInstance) -> tuple[list[str], list[str]]:
    """Channels and call bridges in Asterisk (the holding bridges ``cube-hold-*`` stay: every
    serve reuses them)."""
    channels = [c["name"] for c in _ari(sandbox, "GET", "channels") or ()]
    bridges = [
        b["id"]
        for b in _ari(sandbox, "GET", "bridges") or ()
        if not str(b["id"]).startswith("cube-hold-")
    ]
    return channels, bridges


def clear_leftovers(sandbox: SandboxInstance) -> tuple[list[str], list[str]]:
    """Hang up every channel and destroy every call bridge an earlier test left in the
    session's Asterisk; what was there."""
    channels, bridges = leftovers(sandbox)
    if not channels and not bridges:
        return channels, bridges
    for channel in _ari(sandbox, "GET", "channels") or ():
        _ari(sandbox, "DELETE", f"channels/{channel['id']}")
    for bridge in bridges:
        _ari(sandbox, "DELETE", f"bridges/{bridge}")
    deadline = time.monotonic() + 30
    while leftovers(sandbox) != ([], []):
        if time.monotonic() > deadline:
            raise AssertionError(f"could not clear the sandbox: {leftovers(sandbox)}")
        time.sleep(0.05)
    return channels, bridges


@pytest.fixture(autouse=True)
def _sandbox_starts_clean(request: pytest.FixtureRequest) -> None:
    """A test on the sandbox starts with no channel and no call bridge in Asterisk.

    The sandbox lives for the whole session and every test's database numbers its calls
    from 1: a bridge ``cube-dial-2`` left by an earlier test (its serve stopped with the
    call up: serve keeps calls across a restart) made this test's call 2 fail to bridge
    (ARI answers 409: a bridge with that id exists) and its "nothing left in Asterisk"
    checks fail on what it never made. The clean-up is printed."""
    if "sandbox" not in request.fixturenames:
        return
    sandbox = request.getfixturevalue("sandbox")
    channels, bridges = clear_leftovers(sandbox)
    if channels or bridges:
        print(
            f"\nsandbox: cleared what an earlier test left: channels {channels}, bridges {bridges}"
        )
