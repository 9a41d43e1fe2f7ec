"""A freshly opened panel shows the current state at once (issue #16): its first snapshot
carries the time of sending (the browser's clock offset comes from it) and campaign
figures read now, not at the last read made while somebody else watched."""

from __future__ import annotations

import asyncio
import json

from asterisk_cube.events import EventHub
from asterisk_cube.web.panel_feed import PanelFeed


def _body(message: str) -> dict:
    assert message.startswith("event: snapshot\n")
    return json.loads(message.split("data: ", 1)[1])


async def test_a_snapshot_after_a_quiet_spell_carries_the_time_of_sending():
    now = [1000.0]
    feed = PanelFeed(EventHub(), None, None, clock=lambda: now[0])
    first = _body(feed.snapshot_message()[1])
    now[0] += 20.0  # nothing changed for 20 s
    second = _body(feed.snapshot_message()[1])
    assert second["seq"] == first["seq"]
    assert second["now"] == 1020.0  # was 1000.0: the cached snapshot's time
    assert second["ami"] == first["ami"]


async def test_a_new_panel_gets_the_campaigns_as_they_are_now():
    figures = {"dialed": 1}

    def campaigns():
        return [{"campaign_id": 7, "status": "running", **figures}]

    feed = PanelFeed(EventHub(), None, None, campaigns=campaigns, campaign_interval=5.0)
    first = await feed.subscribe_fresh()
    snap = _body(await asyncio.wait_for(first.next(), 1))
    assert snap["campaigns"]["7"]["dialed"] == 1
    first.close()
    figures["dialed"] = 40  # the dialer worked while nobody watched
    feed._campaigns_read_at -= 30  # ... for 30 s
    second = await feed.subscribe_fresh()
    snap = _body(await asyncio.wait_for(second.next(), 1))
    assert snap["campaigns"]["7"]["dialed"] == 40


async def test_the_state_api_reads_campaigns_nobody_watched():
    def campaigns():
        return [{"campaign_id": 3, "status": "running", "dialed": 5}]

    feed = PanelFeed(EventHub(), None, None, campaigns=campaigns)
    await feed.refresh_if_stale()
    assert _body(feed.snapshot_message()[1])["campaigns"]["3"]["dialed"] == 5
