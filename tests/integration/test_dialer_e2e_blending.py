"""The dialer on the sandbox Asterisk blended with inbound (F-I5, F-I8) and the agents'
feedback after the call: the shared runtime and customers are tests/dialerkit.py."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from dialerkit import (  # the dialer's runtime on the sandbox and its helpers
    _has_status,
    _on_call,
    add_agents,
    add_contacts,
    agent_phones,
    assert_no_call_left,
    cube,  # noqa: F401 - fixture
    customers,  # noqa: F401 - fixture
    number,
    ready,
    until,
)
from sippkit import caller
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.services import provisioning as p

pytestmark = pytest.mark.integration


async def test_blending_and_feedback(cube, sandbox, customers, tmp_path):  # noqa: F811 - fixtures
    """F-I5: agents are blocked for inbound while their predictive campaign dials;
    F-I8: a contact calling back the campaign's number reaches a free agent of the campaign
    meanwhile; F-E4..F-E6: topic outcomes and a scheduled callback act on contacts."""
    did = "4721000077"
    with cube.tx() as s:
        camp = p.add_campaign(
            s, "Blend", mode="predictive", skill="blend", caller_id=did, max_attempts=2, wrap_up=1
        )
        p.add_line(s, did, "Blend callbacks")
        p.add_category(s, "Result", campaign="Blend")
        (sale,) = p.add_topics(s, "Result", ["Sale"], outcome="final", campaign="Blend")
        (machine,) = p.add_topics(s, "Result", ["Machine"], outcome="retry", campaign="Blend")
        (later,) = p.add_topics(s, "Result", ["Call back"], outcome="callback", campaign="Blend")
        topics = {"sale": sale.id, "machine": machine.id, "later": later.id}
        agents = add_agents(s, [1, 2], "blend")
        # two who answer and wait for the agent to hang up, one who will call back, fillers
        phones = [number(1, 5, 0, 1), number(1, 5, 0, 2), number(2, 0, 0, 3)]
        phones += [number(2, 0, 0, 10 + i) for i in range(30)]
        z, w, x, *_ = add_contacts(s, camp.id, phones)
    await cube.start()
    desk, dialer = cube.desk, cube.dialer
    async with agent_phones(sandbox, tmp_path, [1, 2]):
        await ready(desk, agents)
        cube.running("Blend")
        views = [
            await until(lambda a=a: _on_call(desk, a), timeout=15, what="both reached")
            for a in agents
        ]
        by_contact = {
            v.call.contact_id: (a, v.call.call_id) for a, v in zip(agents, views, strict=True)
        }
        assert set(by_contact) == {z, w}
        # Z was an answering machine after all (F-E5): registered during the call
        agent_z, call_z = by_contact[z]
        await desk.register_enquiry(agent_z, call_z, [topics["machine"]], "machine")
        await desk.hangup(agent_z, call_z)
        # W wants a call tomorrow, from anyone (F-E6); then the callback topic
        agent_w, call_w = by_contact[w]
        tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        dialer.schedule_callback(agent_w, call_w, tomorrow, for_me=False, comment="after 10")
        await desk.register_enquiry(agent_w, call_w, [topics["later"]], "after 10")
        await desk.hangup(agent_w, call_w)
        # while lines ring for them, inbound is blocked for the ready agents (F-I5)
        await until(
            lambda: _has_status(cube, x, m.ContactStatus.NOT_ANSWERED),
            timeout=20,
            what="X dialed, not answered",
        )
        await until(lambda: _all_blocked(desk, agents), timeout=10, what="agents blocked")
        # X calls the campaign's number back: a free agent of the campaign gets it (F-I8)
        back = caller(sandbox, did, tmp_path / "x-calls", caller_id="4792000003", hold_ms=6000)
        back.start()
        offered = await until(lambda: _offered(desk, agents), timeout=10, what="callback offered")
        agent_x, offer = offered
        assert offer.kind == "customer_callback" and offer.caller.endswith("92000003")
        assert dialer.runs[camp.id].lines, "the dialer kept dialing for the others"
        await desk.accept(agent_x, offer.call_id)
        view = await until(lambda: _on_call(desk, agent_x), timeout=10, what="callback connected")
        assert view.call.contact_id == x
        await desk.register_enquiry(agent_x, offer.call_id, [topics["sale"]], "sold")
        assert (await asyncio.to_thread(back.wait, 20)).ok
        cube.running("Blend", status="paused")
        await until(lambda: not dialer.lines, timeout=15, what="lines over")
        await assert_no_call_left(sandbox, "the blended calls over")
    with cube.tx() as s:
        cz, cw, cx = (s.get(m.Contact, i) for i in (z, w, x))
        assert cz.status == m.ContactStatus.NOT_ANSWERED and cz.next_attempt_at is not None
        attempt_z = s.scalar(select(m.ContactAttempt).where(m.ContactAttempt.contact_id == z))
        assert attempt_z.result == m.CallState.MACHINE
        assert cw.status == m.ContactStatus.CALLBACK and cw.attempts == 0
        (cb,) = s.scalars(select(m.ScheduledCallback).where(m.ScheduledCallback.contact_id == w))
        assert cb.agent_id is None and cb.comment == "after 10" and cb.due_at == tomorrow
        assert cx.status == m.ContactStatus.DONE


async def _offered(desk, agent_ids):
    for agent_id in agent_ids:
        view = await desk.view(agent_id)
        if view.offer is not None:
            return agent_id, view.offer
    return None


async def _all_blocked(desk, agent_ids):
    views = [await desk.view(a) for a in agent_ids]
    return all(v.blocked for v in views if v.state == "ready") and any(
        v.state == "ready" for v in views
    )
