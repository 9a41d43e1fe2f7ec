"""One leg per phone, inbound: an agent with no wrap-up is offered the next caller only once
its last leg has left Asterisk, on the sandbox with SIPp phones. Callers back to back to one
agent who accepts every offer at once (the fastest agent there is): the first call ended by
the caller, the second by the desk's Hang up, the third by the caller. The agent phone's SIP
trace and ARI ``GET /channels`` sampling never show two calls on the phone at once, and each
next caller is still offered promptly (milliseconds, not the 2 s bound). Unit level:
tests/unit/test_acd_agent_release.py."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from nodekit import call_spans, overlaps, watch_agent_channels
from sippkit import caller, phone
from support.polling import until
from test_call_legs_end import assert_nothing_left, working
from test_inbound_ari import (  # the in-process serve on the sandbox, and its helpers
    _card_ended,
    _connected,
    cube,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.integration

SUPPORT = "4721000001"  # a service line: no wrap-up


def accept_every_offer(desk, offered: dict[int, float]) -> None:
    """The agent accepts each offer the moment it is made (no desk round trip): a ring of
    the phone follows the release of its last call as closely as it can."""
    offer = desk._offer

    def offer_and_accept(call, agent, now, why):
        offer(call, agent, now, why)
        offered[call.call_id] = time.monotonic()
        asyncio.get_running_loop().create_task(desk.accept(agent.agent_id, call.call_id))

    desk._offer = offer_and_accept


def record_rings_and_ends(desk, log: list[tuple[str, str]]) -> None:
    """In order: each ring we ask Asterisk for (``originate``) and each channel Asterisk
    reports destroyed (its ``ChannelDestroyed``, as the inbound app receives it)."""
    app = desk.telephony
    on_event, originate = app.on_event, app.supervisor.originate

    async def event(event, client):
        if event.get("type") == "ChannelDestroyed":
            log.append(("destroyed", event["channel"]["id"]))
        await on_event(event, client)

    async def ring(**params):
        log.append(("originate", params.get("channelId", "")))
        return await originate(**params)

    app.on_event, app.supervisor.originate = event, ring


def record_callers_leaving(desk, left: dict[str, float]) -> None:
    channel_left = desk.channel_left

    def recorded(channel_id):
        left.setdefault(channel_id, time.monotonic())
        return channel_left(channel_id)

    desk.channel_left = recorded


async def connected_to(desk, agent_id, caller_channel):
    view = await _connected(desk, agent_id)
    call = desk.state.call(view.call.call_id) if view else None
    return view if call is not None and call.channel_id == caller_channel else None


async def queued(desk, caller_number):
    for call in desk.calls.values():
        if call.caller == caller_number:
            return call
    return None


async def test_the_next_caller_rings_the_phone_only_once_its_last_leg_is_gone(
    cube,  # noqa: F811 - the fixture imported above
    sandbox,
    tmp_path,
):
    desk, _sessions, ids, lines, *_ = cube
    a1 = ids["agent01"]
    offered: dict[int, float] = {}
    left: dict[str, float] = {}
    accept_every_offer(desk, offered)
    record_callers_leaving(desk, left)
    events: list[tuple[str, str]] = []
    record_rings_and_ends(desk, events)
    seen: dict[str, int] = {}
    doubles: list = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(watch_agent_channels(sandbox, seen, stop, doubles))
    await working(desk, a1, lines[SUPPORT])
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=50) as agent_phone:
        first = caller(sandbox, SUPPORT, tmp_path / "c1", caller_id="91230001", hold_ms=2500)
        first.start()
        one = await until(lambda: queued(desk, "91230001"), what="first caller queued")
        await until(lambda: _connected(desk, a1), what="first call connected")
        # the next two wait in the queue while the first is talking
        second = caller(
            sandbox, SUPPORT, tmp_path / "c2", caller_id="91230002", hold_ms=30000, slot=1
        )
        second.start()
        two = await until(lambda: queued(desk, "91230002"), what="second caller queued")
        # 1. the first caller hangs up: the second is offered (and rung) next
        assert (await asyncio.to_thread(first.wait, 20)).ok
        await until(lambda: connected_to(desk, a1, two.channel_id), what="second connected")
        legs = [one.agent_channel, two.agent_channel]
        third = caller(
            sandbox, SUPPORT, tmp_path / "c3", caller_id="91230003", hold_ms=4000, slot=2
        )
        third.start()
        three = await until(lambda: queued(desk, "91230003"), what="third caller queued")
        # 2. the desk's Hang up ends the second: the third is offered (and rung) next
        left[two.channel_id] = time.monotonic()
        await desk.hangup(a1, two.call_id)
        await until(lambda: connected_to(desk, a1, three.channel_id), what="third connected")
        legs.append(three.agent_channel)
        assert (await asyncio.to_thread(second.wait, 10)).ok
        assert (await asyncio.to_thread(third.wait, 20)).ok
        await until(lambda: _card_ended(desk, a1), what="third call ended")
        await assert_nothing_left(sandbox, "after the three calls")
        stop.set()
        await sampler
    result = agent_phone.stop()
    assert result.successful == 3, result.summary()
    messages = (agent_phone.trace_dir / "messages.log").read_text(errors="replace")
    spans = call_spans(messages)
    assert len(spans) == 3
    # Asterisk had destroyed each call's agent leg before the next call's ring was asked
    # for (was: the ring went out first, the leg still hanging up)
    for last, ring in itertools.pairwise(legs):
        assert events.index(("destroyed", last)) < events.index(("originate", ring)), events
    # the phone never had a call's INVITE before the last call's last message
    assert overlaps(spans) == [], spans
    assert seen.get("agent01") == 1 and doubles == [], doubles  # ARI: one channel at a time
    # still prompt: each next caller offered milliseconds after the last one's end, not
    # after the 2 s bound on a leg that never reports it is gone
    for ended, then in ((one, two), (two, three)):
        delay = offered[then.call_id] - left[ended.channel_id]
        print(f"call {then.call_id} offered {delay * 1000:.1f} ms after call {ended.call_id} ended")
        assert 0 <= delay < 1.0, (ended.call_id, then.call_id, delay)
