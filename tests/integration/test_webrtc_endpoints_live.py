"""Agents added or removed while `serve` runs get (lose) their browser phone endpoint in
Asterisk without another `asterisk-cube webrtc install` (docs/webrtc.md).

`serve` runs on the sandbox with the browser phones installed; the CLI adds an agent: its
`cube-webrtc-<username>` endpoint shows in Asterisk's `pjsip show endpoints` within a few
seconds (before: only after `webrtc install` was run again); the CLI removes it: gone.
"""

from __future__ import annotations

import re
import time

import pytest
from cubeproc import Serve

pytestmark = pytest.mark.integration

LIMIT = 5.0  # seconds from the CLI's commit to Asterisk having (not having) the endpoint


@pytest.fixture
def serve(sandbox, tmp_path):
    srv = Serve.on_sandbox(sandbox, tmp_path)
    srv.cli("agent", "add", "kari", "--endpoint", "PJSIP/kari", "--password", "kari-password-1")
    srv.cli("webrtc", "install")
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def listed(sandbox, name: str) -> bool:
    return re.search(rf"Endpoint:\s+{name}[\s/]", sandbox.rx("pjsip show endpoints")) is not None


def endpoint_shown(sandbox, name: str, present: bool, srv: Serve) -> float:
    """Seconds until Asterisk lists (or no longer lists) endpoint ``name``."""
    started = time.monotonic()
    while True:
        shown = listed(sandbox, name)
        if shown == present:
            return time.monotonic() - started
        if time.monotonic() - started > LIMIT:
            state = "still missing" if present else "still there"
            raise AssertionError(f"{name} {state} after {LIMIT} s:\n{srv.log()}")
        time.sleep(0.2)


def test_added_and_removed_agents_browser_phones_follow(sandbox, serve):
    assert listed(sandbox, "cube-webrtc-kari")
    assert not listed(sandbox, "cube-webrtc-ola")

    serve.cli("agent", "add", "ola", "--endpoint", "PJSIP/ola", "--password", "ola-password-1")
    seconds = endpoint_shown(sandbox, "cube-webrtc-ola", True, serve)
    print(f"endpoint of a new agent in Asterisk after {seconds:.2f} s")
    assert listed(sandbox, "cube-webrtc-kari")  # the others stay

    serve.cli("agent", "remove", "ola")
    seconds = endpoint_shown(sandbox, "cube-webrtc-ola", False, serve)
    print(f"endpoint of a removed agent gone after {seconds:.2f} s")
