"""Issue #19: the AMI monitor asks Asterisk (AMI ``Filter``) for only the events its model
reads, so a call's other ``system,call`` events (LocalBridge, HangupRequest, DialBegin...)
are never sent, parsed by panoramisk and dropped. Against the sandbox Asterisk."""

from __future__ import annotations

import asyncio

import pytest
from support import polling

from asterisk_cube.ami.model import _f
from asterisk_cube.ami.monitor import WANTED_EVENTS, AmiMonitor
from asterisk_cube.config import AmiSettings
from asterisk_cube.events import EventHub
from asterisk_cube.sandbox_host import PASSWORD, USERNAME

pytestmark = pytest.mark.integration

DIALPLAN = """
[ami-filter-test]
exten => s,1,Answer()
 same => n,Wait(0.3)
 same => n,Hangup()
"""


async def test_only_the_events_the_model_reads_arrive(sandbox, test_dialplan):
    test_dialplan(DIALPLAN)
    settings = AmiSettings(
        host="127.0.0.1", port=sandbox.ami_port, username=USERNAME, secret=PASSWORD
    )
    mon = AmiMonitor(settings, EventHub())
    seen: list[str] = []
    apply = mon.on_event

    def on_event(msg):
        seen.append(_f(msg, "Event"))
        return apply(msg)

    mon.on_event = on_event  # type: ignore[method-assign]
    task = asyncio.create_task(mon.run())
    try:
        await polling.until(lambda: not mon.stale, timeout=15.0, what="login + resync")
        assert mon.filtered
        seen.clear()
        await asyncio.to_thread(
            sandbox.rx, "channel originate Local/s@ami-filter-test application Wait 0.3"
        )
        await polling.until(
            lambda: seen.count("Hangup") >= 2 and not mon.channels,
            timeout=15.0,
            what="both Local legs up and hung up in the model",
        )
        assert "Newchannel" in seen and "Newstate" in seen
        assert set(seen) <= set(WANTED_EVENTS), sorted(set(seen) - set(WANTED_EVENTS))
        # from the outside too: Asterisk has nothing left
        out = await asyncio.to_thread(sandbox.rx, "core show channels count")
        assert out.startswith("0 active channels"), out
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
