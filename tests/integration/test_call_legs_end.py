"""Whichever side ends a call, every leg the product made for it ends (issue #11 item 1), and a
missed-call callback is a call like any other (item 5): on the sandbox Asterisk with SIPp
phones, asserted from outside (the phones' SIP traces, ARI ``GET /channels`` and
``/bridges``, ``core show channels``) as well as from the desk and the database."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from sippkit import caller, phone
from test_inbound_ari import (  # the in-process serve on the sandbox, and its helpers
    _answering_setup,
    _card_ended,
    _connected,
    _forward_status,
    _install,
    _missed_count,
    _offer,
    _state,
    cube,  # noqa: F401 - fixture
    until,
)

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.services import provisioning as p

pytestmark = pytest.mark.integration

ARI_AUTH = ("asterisk-cube", "asterisk-cube")


@pytest.fixture
def served(cube):  # noqa: F811 - the fixture imported above
    """test_inbound_ari's ``cube``: (desk, sessions, agent ids, line ids, start, stop)."""
    return cube


SUPPORT = "4721000001"


async def ari_get(sandbox, path):
    async with httpx.AsyncClient(auth=ARI_AUTH) as ari:
        resp = await ari.get(f"{sandbox.ari_url}/ari/{path}")
        resp.raise_for_status()
        return resp.json()


async def nothing_left(sandbox):
    """No channel in Asterisk and none of our call bridges (the holding bridges stay)."""
    channels = await ari_get(sandbox, "channels")
    bridges = [b["id"] for b in await ari_get(sandbox, "bridges")]
    left = [b for b in bridges if not b.startswith("cube-hold-")]
    return not channels and not left and "0 active channels" in sandbox.rx("core show channels")


async def assert_nothing_left(sandbox, what):
    try:
        await until(lambda: nothing_left(sandbox), timeout=10, what=what)
    except AssertionError:
        channels = [(c["id"], c["name"], c["state"]) for c in await ari_get(sandbox, "channels")]
        bridges = [(b["id"], b.get("channels")) for b in await ari_get(sandbox, "bridges")]
        counts = [ln for ln in sandbox.rx("core show channels").splitlines() if "active" in ln]
        raise AssertionError(
            f"{what}: still up in Asterisk: channels {channels}, bridges {bridges}, {counts}"
        ) from None


def byes_received(sipp) -> int:
    """BYEs the phone received from Asterisk (its message trace)."""
    text = (sipp.trace_dir / "messages.log").read_text(errors="replace")
    return len(re.findall(r"message received[^\n]*\n\s*BYE sip:", text))


async def bye_reaches(sipp, what):
    async def got():
        return byes_received(sipp) >= 1

    await until(got, timeout=10, what=what)


async def working(desk, agent_id, line_id):
    await desk.login(agent_id)
    await desk.choose_lines(agent_id, [line_id])
    await desk.ready(agent_id)


async def test_desk_hangup_ends_the_callers_and_the_agents_leg(served, sandbox, tmp_path):
    desk, sessions, ids, lines, *_ = served
    a1 = ids["agent01"]
    await working(desk, a1, lines[SUPPORT])
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100) as agent_phone:
        call = caller(
            sandbox, SUPPORT, tmp_path / "caller", caller_id="91234567", hold_ms=30000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        await until(lambda: _connected(desk, a1), what="connected")
        assert len(await ari_get(sandbox, "channels")) == 2
        await desk.hangup(a1, view.offer.call_id)  # the desk's Hang up
        # Was: only the caller was hung up; the agent's leg stayed Up in its bridge.
        await bye_reaches(agent_phone, "BYE to the agent's phone")
        result = await asyncio.to_thread(call.wait, 10)  # long before its 30 s hold
        assert result.ok, result.summary()
        await assert_nothing_left(sandbox, "after the desk's hang-up")
        assert (await desk.view(a1)).call.state == "ended"
    assert agent_phone.stop().successful == 1
    with transaction(sessions) as s:
        row = s.get(m.Call, view.offer.call_id)
        assert (row.state, row.end_reason) == (m.CallState.ENDED, "agent_hangup")


async def test_agent_phone_hanging_up_ends_the_caller(served, sandbox, tmp_path):
    desk, _sessions, ids, lines, *_ = served
    a1 = ids["agent01"]
    await working(desk, a1, lines[SUPPORT])
    with phone(
        sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100, talk_ms=1500
    ) as agent_phone:
        call = caller(
            sandbox, SUPPORT, tmp_path / "caller", caller_id="91234568", hold_ms=30000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        result = await asyncio.to_thread(call.wait, 20)
        assert result.ok, result.summary()
        await assert_nothing_left(sandbox, "after the agent's phone hung up")
        await until(lambda: _card_ended(desk, a1), what="card ended")
    assert agent_phone.stop().successful == 1


async def test_caller_hanging_up_ends_the_agents_leg(served, sandbox, tmp_path):
    desk, _sessions, ids, lines, *_ = served
    a1 = ids["agent01"]
    await working(desk, a1, lines[SUPPORT])
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100) as agent_phone:
        call = caller(
            sandbox, SUPPORT, tmp_path / "caller", caller_id="91234569", hold_ms=3000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        result = await asyncio.to_thread(call.wait, 20)
        assert result.ok, result.summary()
        await bye_reaches(agent_phone, "BYE to the agent's phone")
        await assert_nothing_left(sandbox, "after the caller hung up")
    assert agent_phone.stop().successful == 1


async def test_desk_hangup_while_announcing_ends_the_target_too(served, sandbox, tmp_path):
    desk, sessions, ids, _lines, *_ = served
    a1 = ids["agent01"]
    line_id = await _answering_setup(desk, sessions, "PJSIP/agent06", "")
    await _install(sessions, sandbox, tmp_path)
    await working(desk, a1, line_id)
    with (
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100) as agent_phone,
        phone(sandbox, sandbox.agent_port(6), tmp_path / "target", answer_ms=200) as target,
    ):
        call = caller(
            sandbox, "4721000003", tmp_path / "caller", caller_id="91234570", hold_ms=30000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        await until(lambda: _connected(desk, a1), what="connected")
        await desk.forward(a1, view.offer.call_id, None)
        await until(lambda: _forward_status(desk, a1, "announcing"), what="announcing")
        assert len(await ari_get(sandbox, "channels")) == 3
        await desk.hangup(a1, view.offer.call_id)
        await bye_reaches(agent_phone, "BYE to the agent's phone")
        await bye_reaches(target, "BYE to the forward target")
        result = await asyncio.to_thread(call.wait, 10)
        assert result.ok, result.summary()
        await assert_nothing_left(sandbox, "after the hang-up during the announcement")
    assert agent_phone.stop().successful == 1
    assert target.stop().successful == 1


async def test_missed_call_callback_is_a_call_on_the_desk(served, sandbox, tmp_path):
    desk, sessions, ids, lines, *_ = served
    a1 = ids["agent01"]
    gives_up = caller(sandbox, SUPPORT, tmp_path / "gives-up", caller_id="91230001", hold_ms=1500)
    assert (await asyncio.to_thread(gives_up.run, 30)).ok
    await until(lambda: _missed_count(sessions), what="missed call")
    with transaction(sessions) as s:
        p.add_category(s, "Outcome")
        p.add_topics(s, "Outcome", ["Solved"])
    await desk.login(a1)
    await desk.choose_lines(a1, [lines[SUPPORT]])
    missed_id = (await desk.view(a1)).missed[0].missed_id
    with (
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100) as agent_phone,
        phone(sandbox, sandbox.customer_ports[0], tmp_path / "customer", answer_ms=300) as customer,
    ):
        await desk.callback_missed(a1, missed_id)
        view = await desk.view(a1)
        assert view.state == "busy" and view.blocked
        assert view.call is not None and view.call.state == "connecting"  # a card at once
        call_id = view.call.call_id
        view = await until(lambda: _connected(desk, a1), what="callback connected")
        assert view.call.caller == "91230001" and view.call.answered_at is not None
        await desk.journal.drain()
        with transaction(sessions) as s:
            row = s.get(m.Call, call_id)
            assert row.state == m.CallState.CONNECTED and row.answered_at is not None
        # The customer is shown the line's number, not "anonymous" (the sandbox trunk sends
        # From: carrier, so read the caller ID Asterisk presents from ARI).
        (leg,) = [
            ch
            for ch in await ari_get(sandbox, "channels")
            if ch["name"].startswith("PJSIP/carrier")
        ]
        assert leg["caller"]["number"] == SUPPORT, leg["caller"]
        await desk.hangup(a1, call_id)  # was 404 "not yours": no card for the callback
        await bye_reaches(agent_phone, "BYE to the agent's phone")
        await bye_reaches(customer, "BYE to the customer")
        await assert_nothing_left(sandbox, "after hanging up the callback")
        view = await desk.view(a1)
        assert view.call.state == "ended" and view.state == "paused"  # back to its pause
        topic = view.call.categories[0].topics[0].topic_id
        await desk.register_enquiry(a1, call_id, [topic], "called back")
        await desk.close_call(a1, call_id)
    await desk.mark_missed_processed(a1, missed_id)
    await desk.journal.drain()
    with transaction(sessions) as s:
        row = s.get(m.Call, call_id)
        assert row.state == m.CallState.ENDED and row.answered_at is not None
        assert row.ended_at >= row.answered_at and row.end_reason == "agent_hangup"
        roles = sorted(leg.role.value for leg in row.legs)
        assert roles == ["agent", "contact"]
        assert s.get(m.MissedCall, missed_id).callback_call_id == call_id
    assert await _state(desk, a1, "paused")
