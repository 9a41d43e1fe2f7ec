"""The dialer's loop and call flows against SQLite, the real distributor and a fake
telephony (tests/integration/test_dialer_e2e.py runs the same on Asterisk): dialing,
connecting, abandoning, preview, callbacks and wrap-up. Pacing inputs are in
test_dialer_service_pacing.py, the loop's claims and steps in test_dialer_service_steps.py;
the shared world is tests/support/dialer.py."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select
from support.dialer import (
    Clock,
    dialer_world,
    make,
    ready,
    run_until,
    settled,
    statuses,
)

from asterisk_cube.acd.distributor import EnquiryRegistered
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.services import provisioning as p

#: The loop tests run on looptime's fast-forwarding event loop: sleeps, timeouts and the
#: dialer's budgets (0.1-0.3 s here) are measured on the loop's fake clock, which moves only
#: when every task waits, so a busy machine cannot make them run out (issue #11 item 11).
pytestmark = pytest.mark.looptime


@pytest.fixture
def world(tmp_path):
    return dialer_world(tmp_path)


async def test_power_dials_one_line_per_ready_agent_and_closes_every_contact(world):
    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(12)]
    dialer, distributor, tel, cid = make(world, "power", phones, max_attempts=1)
    for i, phone in enumerate(phones):
        tel.contacts[phone] = (
            ("answer", 0.02, 0.05) if i % 3 == 0 else ("never",) if i % 3 == 1 else ("busy",)
        )
    await ready(distributor, agents[:2])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    assert sorted(tel.dialed) == sorted(phones)  # each once
    assert tel.max_live_contacts <= 2  # power: never more lines than ready agents
    assert statuses(sessions, cid).count("done") == 4
    assert statuses(sessions, cid).count("exhausted") == 8
    assert len(tel.bridged) == 4 and not tel.played
    with transaction(sessions) as s:
        results = sorted(a.result.value for a in s.scalars(select(m.ContactAttempt)))
        assert results == ["ended"] * 4 + ["failed"] * 4 + ["no_answer"] * 4
        calls = s.scalars(select(m.Call).where(m.Call.state == m.CallState.ENDED)).all()
        assert all(c.agent_id in agents[:2] and c.answered_at for c in calls)
    assert dialer.connect_delays.count == 4


@pytest.mark.parametrize("mode", ["power", "predictive"])
async def test_an_agent_is_rung_again_only_once_its_last_leg_left_asterisk(world, mode):
    """No wrap-up: the agent is free the moment a call ends, and the next contact is
    there at once; its phone must not be rung while the last call's leg still hangs up
    (the two-node predictive test saw two PJSIP/agent01 channels in ARI at once)."""
    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(6)]
    dialer, distributor, tel, cid = make(world, mode, phones, max_attempts=1)
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    tel.teardown = 0.08
    await ready(distributor, agents[:1])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    assert len(tel.bridged) >= 3  # the agent took call after call
    assert tel.max_legs_per_phone == 1


async def test_no_free_agent_within_the_budget_abandons_with_the_message(world):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    tel.contacts["+4790000001"] = ("answer", 0.05, None)
    await ready(distributor, agents[:1])

    async def pause_when_dialing():
        while not tel.dialed:
            await asyncio.sleep(0.005)
        await distributor.pause(agents[0], "break")

    pauser = asyncio.create_task(pause_when_dialing())
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    await pauser
    assert tel.played and not tel.bridged
    waits = dialer.abandon_waits
    assert waits.count == 1 and 0.25 <= waits.min <= waits.max <= 0.35
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert (call.state, call.end_reason) == (m.CallState.ABANDONED, "abandoned_no_agent")
    stats = dialer.snapshot()[0]
    assert (stats["abandoned_today"], stats["answered_today"]) == (1, 1)


async def test_silent_auto_answer_phone_abandons_and_pauses_that_agent(world):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    tel.contacts["+4790000001"] = ("answer", 0.02, None)
    tel.silent_agents.add("PJSIP/agent1")
    await ready(distributor, agents[:1])
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    view = await distributor.view(agents[0])
    assert (view.state, view.pause_reason) == ("paused", "no_answer")
    with transaction(sessions) as s:
        assert s.scalar(select(m.Call.end_reason)) == "abandoned_agent_no_answer"


async def test_preview_agent_first_and_no_answer_moves_on(world):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "preview", ["+4790000001"], max_attempts=1)
    tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
    tel.silent_agents.add("PJSIP/agent1")
    await ready(distributor, agents[:1])  # only the silent one at first

    async def second_agent_later():
        while (await distributor.view(agents[0])).state != "paused":
            await asyncio.sleep(0.01)
        assert not tel.dialed  # the contact is dialed only once an agent answered
        await ready(distributor, agents[1:2])

    helper = asyncio.create_task(second_agent_later())
    await run_until(dialer, lambda: statuses(sessions, cid) == ["done"] and not dialer.lines)
    await helper
    with transaction(sessions) as s:
        (attempt,) = s.scalars(select(m.ContactAttempt)).all()
        assert attempt.agent_id == agents[1] and attempt.result == m.CallState.ENDED
        legs = s.scalars(select(m.CallLeg).where(m.CallLeg.role == m.LegRole.AGENT)).all()
        assert [(leg.agent_id, leg.answered_at is not None) for leg in legs] == [
            (agents[0], False),
            (agents[1], True),
        ]
        # the unanswered leg rang for agent_ring_timeout (0.1 s): its ring time is kept
        assert legs[0].ended_at - legs[0].started_at >= dt.timedelta(seconds=0.1)


async def test_preview_never_offered_again_to_the_agent_who_let_it_ring(world):
    """#11 item 7: the only agent lets the contact ring: it is paused once, its ring time is
    kept; when it is ready again the contact is not offered to it a second time but goes
    back to the list for the retry interval (the attempt does not count)."""
    sessions, agents = world
    dialer, distributor, tel, cid = make(
        world, "preview", ["+4790000001"], max_attempts=2, retry_interval=5
    )
    tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
    tel.silent_agents.add("PJSIP/agent1")
    await ready(distributor, agents[:1])

    async def back_from_the_pause():
        while (await distributor.view(agents[0])).pause_reason != "no_answer":
            await asyncio.sleep(0.01)
        assert dialer.lines  # the contact waits for an agent who has not let it ring
        await distributor.ready(agents[0])

    helper = asyncio.create_task(back_from_the_pause())
    await run_until(
        dialer,
        lambda: helper.done() and statuses(sessions, cid) == ["not_answered"] and not dialer.lines,
    )
    await helper
    dialer.step()  # nothing for it now (the old rule offered it the same contact again)
    assert not dialer.lines and not tel.dialed
    assert (await distributor.view(agents[0])).state == "ready"  # paused once only
    with transaction(sessions) as s:
        contact = s.scalar(select(m.Contact))
        assert contact.attempts == 0  # never dialed
        call = s.scalar(select(m.Call))
        assert (call.state, call.end_reason) == (m.CallState.FAILED, "no_agent_answered")
        assert contact.next_attempt_at - call.ended_at == dt.timedelta(minutes=5)
        (leg,) = s.scalars(select(m.CallLeg).where(m.CallLeg.role == m.LegRole.AGENT)).all()
        assert (leg.agent_id, leg.answered_at, leg.cause) == (agents[0], None, "no_answer")
        # it rang for the whole agent_ring_timeout (0.1 s): the ring time is in the data
        assert leg.ended_at - leg.started_at >= dt.timedelta(seconds=0.1)


async def hang_up_from_the_desk_while_it_rings(dialer, distributor, tel, agent_id):
    """Run the dialer until the agent's phone rings, press the desk's Hang up, check that
    the ringing leg went at once (not rung out), and run until the call is over."""
    distributor.telephony = tel  # what the desk's Hang up releases through (serve: ARI)
    task = asyncio.create_task(dialer.run())
    try:
        while not tel.agent_legs:
            await asyncio.sleep(0.005)
        (ringing,) = tel.agent_legs
        view = await distributor.view(agent_id)
        assert view.call.state == "connecting"
        await distributor.hangup(agent_id, view.call.call_id)
        await asyncio.sleep(0.005)  # the release task
        # hung up at once, not rung out, and no other leg of it left (power: the contact)
        assert tel.gone(ringing).done() and not tel.live
        while dialer.lines or (await distributor.view(agent_id)).call is not None:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    view = await distributor.view(agent_id)
    assert (view.state, view.pause_reason) == ("ready", None)  # ended on purpose


async def test_preview_hung_up_from_the_desk_while_the_agents_phone_rings(world):
    """The desk's Hang up while the agent's phone rings for a preview call: that ringing
    leg is hung up at once, the contact is not dialed, and the agent, who ended it on
    purpose, is not paused for letting it ring (it was: "not connected yet" refused the
    click, and the phone rang out into a no-answer pause)."""
    _sessions, agents = world
    dialer, distributor, tel, _cid = make(world, "preview", ["+4790000001"], max_attempts=1)
    tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
    tel.silent_agents.add("PJSIP/agent1")  # its phone rings until we give up
    await ready(distributor, agents[:1])
    await hang_up_from_the_desk_while_it_rings(dialer, distributor, tel, agents[0])
    assert not tel.dialed


async def test_power_call_hung_up_from_the_desk_while_the_agents_phone_rings(world):
    """Power: the contact answered and waits, the agent's phone rings (auto-answer, slow
    here). The desk's Hang up ends both legs at once: no abandon message is played into
    the contact's hung-up line, and the agent is not paused."""
    _sessions, agents = world
    dialer, distributor, tel, _cid = make(world, "power", ["+4790000001"], max_attempts=1)
    tel.contacts["+4790000001"] = ("answer", 0.02, None)  # stays on the line
    tel.silent_agents.add("PJSIP/agent1")
    await ready(distributor, agents[:1])
    await hang_up_from_the_desk_while_it_rings(dialer, distributor, tel, agents[0])
    assert not tel.played  # no abandon message into a line we hung up


async def test_callback_reserved_for_its_agent_then_to_another(world):
    sessions, agents = world
    clock = Clock()
    dialer, distributor, tel, cid = make(
        world, "power", ["+4790000001"], clock=clock, callback_reservation=10
    )
    tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
    a1, a2 = agents[:2]
    with transaction(sessions) as s:
        contact = s.scalar(select(m.Contact))
        contact.status = m.ContactStatus.CALLBACK
        s.add(
            m.ScheduledCallback(
                contact_id=contact.id,
                campaign_id=cid,
                agent_id=a1,
                due_at=clock() - dt.timedelta(minutes=1),
                comment="ring after lunch",
            )
        )
    await ready(distributor, [a1, a2])
    await distributor.pause(a1, "lunch")  # logged in, not free: the callback waits for it
    task = asyncio.create_task(dialer.run())
    try:
        await asyncio.sleep(0.3)
        assert not tel.dialed
        clock.offset = dt.timedelta(minutes=10)  # the reservation ran out
        comment = None
        while comment is None:
            view = await distributor.view(a2)
            comment = view.call.comment if view.call else None
            await asyncio.sleep(0.005)
        assert comment == "ring after lunch"  # shown on delivery
        while dialer.lines or statuses(sessions, cid) != ["done"]:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with transaction(sessions) as s:
        cb = s.scalar(select(m.ScheduledCallback))
        assert cb.status == m.CallbackStatus.DELIVERED
        assert s.scalar(select(m.ContactAttempt.agent_id)) == a2


async def test_topic_feedback_after_the_call(world):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=3)
    tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
    with transaction(sessions) as s:
        p.add_category(s, "Result", campaign="Out")
        (retry,) = p.add_topics(s, "Result", ["Machine"], outcome="retry", campaign="Out")
        (later,) = p.add_topics(s, "Result", ["Later"], outcome="callback", campaign="Out")
        topics = (retry.id, later.id)
    await ready(distributor, agents[:1])
    await run_until(dialer, lambda: statuses(sessions, cid) == ["done"] and not dialer.lines)
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        contact_id = call.contact_id
    event = EnquiryRegistered(call.id, agents[0], cid, contact_id, (topics[0],), "", "power")
    dialer.on_enquiry(event)  # "answering machine" after all: dialed again later (F-E5)
    with transaction(sessions) as s:
        contact = s.get(m.Contact, contact_id)
        assert contact.status == m.ContactStatus.NOT_ANSWERED and contact.next_attempt_at
        assert s.scalar(select(m.ContactAttempt.result)) == m.CallState.MACHINE
    dialer.on_enquiry(
        EnquiryRegistered(call.id, agents[0], cid, contact_id, (topics[1],), "at 3", "power")
    )
    with transaction(sessions) as s:
        contact = s.get(m.Contact, contact_id)
        cb = s.scalar(select(m.ScheduledCallback))
        assert contact.status == m.ContactStatus.CALLBACK
        assert (cb.agent_id, cb.comment) == (agents[0], "at 3")
        campaign = load_campaign(s, cid)
        assert cb.due_at - contact.last_attempt_at >= campaign.rules.retry_interval


async def test_pausing_from_wrap_up_strands_nothing(world):
    """F-D5: an agent who asks for a pause during wrap-up is not dialed for any more."""
    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(5)]
    dialer, distributor, tel, cid = make(world, "predictive", phones, wrap_up=1)
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.01, 0.05)
    await ready(distributor, agents[:1])
    task = asyncio.create_task(dialer.run())
    try:
        while (await distributor.view(agents[0])).state != "wrap_up":
            await asyncio.sleep(0.005)
        await distributor.pause(agents[0], "break")
        # predictive may have claimed a line ahead before this (decided, counted honestly)
        dialed = len(phones) - statuses(sessions, cid).count("new")
        while (await distributor.view(agents[0])).state != "paused":
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(tel.dialed) == dialed  # nothing dialed for the pausing agent
    assert statuses(sessions, cid).count("new") == len(phones) - dialed


async def test_an_abandoned_contact_who_left_before_the_message_is_not_a_missed_message(world):
    """A contact who hung up before the abandon message could play (the play fails, the
    channel is gone) is ``abandoned_no_agent_contact_left``; ``..._no_message`` is kept
    for a message that failed while the contact was there."""
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    tel.contacts["+4790000001"] = ("answer", 0.05, None)

    async def hung_up_just_before(channel, media, timeout=15.0):
        tel._leave(channel)  # Asterisk answers the play request 404/409
        return False

    tel.play = hung_up_just_before
    await ready(distributor, agents[:1])

    async def pause_when_dialing():
        while not tel.dialed:
            await asyncio.sleep(0.005)
        await distributor.pause(agents[0], "break")

    pauser = asyncio.create_task(pause_when_dialing())
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    await pauser
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert (call.state, call.end_reason) == (
            m.CallState.ABANDONED,
            "abandoned_no_agent_contact_left",
        )


async def test_a_contact_hanging_up_during_the_message_left_too(world):
    """Asterisk fails the playback when the contact hangs up during it (the e2e day test
    under load: beep started 3.9 s after the answer, failed 90 ms later); the channel's
    StasisEnd comes just after the failure: that contact left, it is not a missed message."""
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    tel.contacts["+4790000001"] = ("answer", 0.05, None)

    async def hung_up_during(channel, media, timeout=15.0):
        asyncio.get_running_loop().call_later(0.05, tel._leave, channel)
        return False  # PlaybackFinished: failed

    tel.play = hung_up_during
    await ready(distributor, agents[:1])

    async def pause_when_dialing():
        while not tel.dialed:
            await asyncio.sleep(0.005)
        await distributor.pause(agents[0], "break")

    pauser = asyncio.create_task(pause_when_dialing())
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    await pauser
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert call.end_reason == "abandoned_no_agent_contact_left"
