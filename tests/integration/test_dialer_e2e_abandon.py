"""The dialer on the sandbox Asterisk after a customer answered with no agent to take the
call (the abandon rule: message, log, retry) or a machine answered (AMD): the shared
runtime and customers are tests/dialerkit.py."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from dialerkit import (  # the dialer's runtime on the sandbox and its helpers
    SLOW_RING,
    _ended,
    _paused,
    add_agents,
    add_contacts,
    agent_phones,
    assert_no_call_left,
    cube,  # noqa: F401 - fixture
    customer_drops,
    customers,  # noqa: F401 - fixture
    number,
    ready,
    until,
)
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.services import provisioning as p

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cube", [SLOW_RING], indirect=True)
async def test_abandon_rule_message_log_and_retry(cube, sandbox, customers, tmp_path):  # noqa: F811 - fixtures
    """An answered contact with no agent within 2 s hears the message, is hung up and
    logged abandoned (and dialed again later); so is one whose agent phone does not
    answer by itself in time, and that agent is paused."""
    with cube.tx() as s:
        camp = p.add_campaign(
            s, "Drops", mode="power", skill="drops", max_attempts=2, retry_interval=1, wrap_up=1
        )
        a1, a2 = add_agents(s, [1, 2], "drops")
        # the first rings 3 s: time for the agent's break to start first, however busy
        first, second = add_contacts(s, camp.id, [number(1, 30, 0, 1), number(1, 10, 0, 2)])
        cid = camp.id
    await cube.start()
    desk, dialer = cube.desk, cube.dialer
    async with agent_phones(sandbox, tmp_path, [1, 2], **{"2": 5000}):
        await ready(desk, [a1])
        cube.running("Drops")
        # the dialer dials one line for the one ready agent; that agent goes on a break
        await until(lambda: dialer.lines, timeout=10, what="a line dialed")
        await desk.pause(a1, "break")
        await until(lambda: _ended(cube, first), timeout=20, what="first abandoned")
        # now the only ready agent's phone takes 5 s to answer: also too late
        await ready(desk, [a2])
        await until(lambda: _ended(cube, second), timeout=20, what="second abandoned")
        assert await _paused(desk, a2)
        await until(lambda: not dialer.lines, timeout=10, what="lines over")
        await assert_no_call_left(sandbox, "both abandoned")
    # the customers' own log tells the same: both answered, both hung up by us
    await asyncio.to_thread(customers.stop)
    phones = {number(1, 30, 0, 1).lstrip("+"), number(1, 10, 0, 2).lstrip("+")}
    assert customer_drops(customers.trace_dir, phones) == (2, 2)
    with cube.tx() as s:
        calls = {
            c.contact_id: c for c in s.scalars(select(m.Call).where(m.Call.campaign_id == cid))
        }
        assert calls[first].end_reason == "abandoned_no_agent"
        assert calls[second].end_reason == "abandoned_agent_no_answer"
        for contact_id in (first, second):
            call = calls[contact_id]
            (leg,) = [x for x in call.legs if x.role == m.LegRole.CONTACT]
            assert call.state == m.CallState.ABANDONED and call.answered_at is None
            # the decision after 2 s, then the whole message (several seconds) before hang-up
            assert leg.answered_at is not None
            assert (call.ended_at - leg.answered_at).total_seconds() > 2.0 + 2.0
            contact = s.get(m.Contact, contact_id)
            assert contact.status == m.ContactStatus.NOT_ANSWERED and contact.attempts == 1
            assert contact.next_attempt_at - call.ended_at == dt.timedelta(minutes=1)
        results = [a.result for a in s.scalars(select(m.ContactAttempt))]
        assert results == [m.CallState.ABANDONED, m.CallState.ABANDONED]
    waits = dialer.abandon_waits  # a bounded histogram: count, min and max are exact
    print(f"\nanswered -> abandon decided: {waits!r}")
    assert waits.count == 2 and 1.8 <= waits.min <= waits.max <= 2.3, waits
    stats = {row["campaign"]: row for row in dialer.snapshot()}["Drops"]
    assert (stats["abandoned_today"], stats["answered_today"]) == (2, 2)


@pytest.mark.parametrize("cube", [SLOW_RING], indirect=True)
async def test_answering_machine_detection(cube, sandbox, customers, tmp_path):  # noqa: F811 - fixtures
    """AMD on: an answered line that stays silent is judged by Asterisk's AMD() in the
    generated cube-dialer context; a machine never reaches an agent and is retried."""
    with cube.tx() as s:
        camp = p.add_campaign(
            s, "Machines", mode="power", skill="amd", max_attempts=2, retry_interval=1, amd=True
        )
        (agent,) = add_agents(s, [1], "amd")
        (silent,) = add_contacts(s, camp.id, [number(5, 3, 0, 1)])
    await cube.start()
    async with agent_phones(sandbox, tmp_path, [1]):
        await ready(cube.desk, [agent])
        cube.running("Machines")
        await until(lambda: _ended(cube, silent), timeout=20, what="machine call over")
        await assert_no_call_left(sandbox, "the machine's call over")
    with cube.tx() as s:
        call = s.scalar(select(m.Call).where(m.Call.contact_id == silent))
        attempt = s.scalar(select(m.ContactAttempt))
        contact = s.get(m.Contact, silent)
        print(f"\nAMD: {call.state.value} {call.end_reason}")
        assert (call.state, call.end_reason) == (m.CallState.MACHINE, "machine")
        assert attempt.result == m.CallState.MACHINE and attempt.agent_id is None
        assert contact.status == m.ContactStatus.NOT_ANSWERED
        assert not [leg for leg in call.legs if leg.role == m.LegRole.AGENT]
