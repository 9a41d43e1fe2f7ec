"""The distributor against a real (SQLite) database and a fake telephony."""

import asyncio
import datetime as dt
import functools
import sqlite3
import threading
import time

import pytest
from dbkit import db
from sqlalchemy import select
from support import polling
from support.fakes import FakeTelephony

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import supervision as sv
from asterisk_cube.acd.distributor import Clock, Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p


class StepClock(Clock):
    def __init__(self):
        self.t = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
        super().__init__(now=lambda: self.t)

    def tick(self, seconds=1.0):
        self.t += dt.timedelta(seconds=seconds)


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_campaign(s, "Hot", direction="inbound", forced_registration=True)
        p.add_line(s, "100", "Low", priority=1)
        p.add_line(s, "200", "High", priority=9)
        p.add_line(s, "300", "Hotline", priority=5, campaign="Hot")
        for name in ("ann", "bob", "cid"):
            p.add_agent(s, name, endpoint=f"PJSIP/{name}", lines=["100", "200", "300"])
        p.add_category(s, "Mood")
        p.add_topics(s, "Mood", ["Happy", "Sad"])
        p.add_category(s, "Product", multi=True)
        p.add_topics(s, "Product", ["A", "B"])
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    return sessions, ids, lines


def make(world, telephony=None, clock=None):
    sessions = world[0]
    d = Distributor(sessions, EventHub(), telephony or FakeTelephony(), clock or StepClock())
    d.load()
    return d


async def start_work(d, agent_id, line_ids):
    await d.login(agent_id)
    await d.choose_lines(agent_id, line_ids)
    await d.ready(agent_id)


settle = functools.partial(polling.settle, 5)


async def test_higher_priority_line_first_then_longest_wait(world):
    _, ids, lines = world
    clock = StepClock()
    d = make(world, clock=clock)
    low = d.call_arrived("ch-low", lines["100"], "+4791000001")
    clock.tick()
    high = d.call_arrived("ch-high", lines["200"], "+4791000002")
    await start_work(d, ids["ann"], [lines["100"], lines["200"]])
    view = await d.view(ids["ann"])
    assert view.offer.call_id == high  # younger but on the higher-priority line
    await start_work(d, ids["bob"], [lines["100"], lines["200"]])
    assert (await d.view(ids["bob"])).offer.call_id == low


async def test_accept_connects_and_hangup_ends_in_wrap_up(world):
    _, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    assert tel.connected == [(call_id, "PJSIP/ann", False)]
    view = await d.view(ids["ann"])
    assert view.state == "busy" and view.call.state == "connected"
    d.caller_left("ch1")
    view = await d.view(ids["ann"])
    assert view.call.state == "ended"
    with db(d) as s:
        call = s.get(m.Call, call_id)
        assert call.state == m.CallState.ENDED and call.answered_at is not None
        states = [
            r.to_state.value
            for r in s.scalars(select(m.AgentStateLog).order_by(m.AgentStateLog.id))
        ]
        assert states[-3:] == ["offered", "busy", "ready"]  # service line: no wrap-up time


async def test_unaccepted_offer_moves_on_and_pauses_the_agent(world):
    _, ids, lines = world
    clock = StepClock()
    d = make(world, clock=clock)
    await start_work(d, ids["ann"], [lines["100"]])
    clock.tick()
    await start_work(d, ids["bob"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    assert (await d.view(ids["ann"])).offer.call_id == call_id  # idle longest
    clock.tick(20)
    d._offer_timed_out(call_id, ids["ann"])
    ann, bob = await d.view(ids["ann"]), await d.view(ids["bob"])
    assert ann.state == "paused" and ann.pause_reason == "no_answer" and ann.offer is None
    assert bob.offer.call_id == call_id
    with db(d) as s:
        results = [o.result for o in s.scalars(select(m.CallOffer).order_by(m.CallOffer.id))]
        assert results == [m.OfferResult.TIMEOUT, m.OfferResult.PENDING]


async def test_caller_hanging_up_while_waiting_is_a_missed_call(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["200"]])
    call_id = d.call_arrived("ch1", lines["200"], "+4791000009")
    assert (await d.view(ids["ann"])).offer.call_id == call_id
    d.caller_left("ch1")
    view = await d.view(ids["ann"])
    assert view.state == "ready" and view.offer is None
    assert [mc.caller for mc in view.missed] == ["+4791000009"]
    await d.mark_missed_processed(ids["ann"], view.missed[0].missed_id)
    assert (await d.view(ids["ann"])).missed == []
    with db(d) as s:
        assert s.get(m.Call, call_id).state == m.CallState.MISSED
        assert s.scalar(select(m.CallOffer)).result == m.OfferResult.WITHDRAWN


async def test_agent_not_answering_phone_keeps_caller_in_place(world):
    _, ids, lines = world
    tel = FakeTelephony()
    tel.answer = False
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    ann = await d.view(ids["ann"])
    assert ann.state == "paused" and ann.pause_reason == "no_answer"
    await start_work(d, ids["bob"], [lines["100"]])
    assert (await d.view(ids["bob"])).offer.call_id == call_id


async def test_forged_requests_are_refused_and_change_nothing(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    before = await d.view(ids["ann"])
    with pytest.raises(c.Refused) as exc:
        await d.accept(ids["bob"], call_id)
    assert exc.value.reason == c.NOT_FOUND
    with pytest.raises(c.Refused):
        await d.register_enquiry(ids["bob"], call_id, [1], "")
    with pytest.raises(c.Refused) as exc:
        await d.choose_lines(ids["bob"], [lines["100"], 9999])
    assert exc.value.reason == c.NOT_PERMITTED
    after = await d.view(ids["ann"])
    assert after.offer == before.offer and after.state == "offered"


async def test_hotline_creates_contact_and_forced_registration_holds_the_card(world):
    _sessions, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["300"]])
    call_id = d.call_arrived("ch1", lines["300"], "91234567")
    await d.accept(ids["ann"], call_id)
    await settle()
    await d.journal.drain()  # the new contact is created by the write-behind journal
    view = await d.view(ids["ann"])
    assert view.call.kind == "new_customer" and view.call.registration_required
    assert [ct.phone for ct in view.call.contacts] == ["+4791234567"]
    assert view.call.contact_id == view.call.contacts[0].contact_id
    d.caller_left("ch1")
    with pytest.raises(c.Refused) as exc:
        await d.close_call(ids["ann"], call_id)
    assert exc.value.reason == c.REGISTRATION_REQUIRED
    topics = {t.name: t.topic_id for cat in view.call.categories for t in cat.topics}
    with pytest.raises(c.Refused, match="Mood takes one choice"):
        await d.register_enquiry(ids["ann"], call_id, [topics["Happy"], topics["Sad"]], "")
    await d.register_enquiry(ids["ann"], call_id, [topics["Happy"], topics["A"], topics["B"]], "ok")
    await d.close_call(ids["ann"], call_id)
    assert (await d.view(ids["ann"])).call is None
    with db(d) as s:
        enquiry = s.scalar(select(m.Enquiry))
        assert sorted(t.name for t in enquiry.topics) == ["A", "B", "Happy"]
        assert enquiry.line_id == lines["300"] and enquiry.agent_id == ids["ann"]


async def test_restart_keeps_waiting_order_and_loses_no_call(world):
    _, ids, lines = world
    clock = StepClock()
    first = make(world, clock=clock)
    order = []
    for i in range(4):
        order.append(first.call_arrived(f"ch{i}", lines["100"], f"9100000{i}"))
        clock.tick()
    await start_work(first, ids["ann"], [lines["100"]])  # ann gets ch0 offered
    await first.close()
    # serve restarts; Asterisk still holds ch0, ch1, ch3 (ch2 hung up meanwhile)
    second = make(world, clock=clock)
    stats = second.recover({"ch0", "ch1", "ch3"})
    assert stats == {"waiting": 3, "connected": 0, "missed": 1, "ended": 0}
    assert second.waiting_channels()[1:] == ["ch1", "ch3"]
    ann = await second.view(ids["ann"])
    assert ann.offer.call_id == order[0]  # offered again, oldest first
    with transaction(world[0]) as s:
        assert s.get(m.Call, order[2]).state == m.CallState.MISSED


async def test_waiting_counter_shown_while_paused(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    await d.pause(ids["ann"], "break")
    d.call_arrived("ch1", lines["100"], "91000001")
    view = await d.view(ids["ann"])
    counts = {ln.did: ln.waiting for ln in view.lines}
    assert counts == {"100": 1, "200": 0, "300": 0}
    assert view.offer is None


async def test_outbound_call_blocks_inbound_and_ends_in_wrap_up(world):
    _sessions, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    with db(d) as s:
        camp = p.add_campaign(s, "Out", mode="power", wrap_up=30)
        row = m.Call(
            id=d.ids.next(m.Call),  # as the dialer does (db/ids.py)
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=camp.id,
            started_at=d.now(),
        )
        s.add(row)
        s.flush()
        call_id, camp_id = row.id, camp.id
    d.set_dialer_dialing(ids["ann"], True)
    d.call_arrived("ch-in", lines["100"], "91000001")
    view = await d.view(ids["ann"])
    waiting = {ln.did: ln.waiting for ln in view.lines}
    assert view.blocked and view.offer is None and waiting["100"] == 1  # F-I5
    d.outbound_started(
        call_id=call_id,
        agent_id=ids["ann"],
        campaign_id=camp_id,
        contact_id=None,
        number="+4791000002",
        channel_id="ch-out",
        mode="power",
        connected=True,
    )
    view = await d.view(ids["ann"])
    assert view.state == "busy" and view.call.kind == "power" and view.blocked
    d.outbound_ended(call_id)
    view = await d.view(ids["ann"])
    assert view.state == "wrap_up" and view.call.state == "ended" and not view.blocked
    await d.finish_wrap_up(ids["ann"])
    assert (await d.view(ids["ann"])).offer is not None  # inbound flows again


async def test_taking_an_agent_for_an_answered_outbound_call_waits_for_no_database_lock(
    world, tmp_path
):
    """The dialer takes an agent inside its 2 s budget (answered -> bridged): with another
    thread holding SQLite's write lock (the dialer's or the journal's commit), taking the
    agent must not wait for it on the loop (issue #11 item 11: a 0.5 s stall under load,
    from the synchronous transaction and journal flush it did). The rows follow."""
    _sessions, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    with db(d) as s:
        camp = p.add_campaign(s, "Quick", mode="power", wrap_up=7)
        row = m.Call(
            id=d.ids.next(m.Call),
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.DIALING,
            campaign_id=camp.id,
            started_at=d.now(),
        )
        s.add(row)
        call_id, camp_id = row.id, camp.id
    writer = sqlite3.connect(tmp_path / "cube.db", timeout=0, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another thread's commit in flight
    release = threading.Timer(2.0, writer.rollback)
    release.start()
    try:
        started = time.monotonic()
        d.outbound_started(
            call_id=call_id,
            agent_id=ids["ann"],
            campaign_id=camp_id,
            contact_id=None,
            number="+4791000003",
            channel_id="ch-out",
            mode="power",
            connected=False,
        )
        took = time.monotonic() - started
    finally:
        release.join()
        writer.close()
    assert took < 0.5, f"outbound_started held the loop {took:.2f} s for a database lock"
    view = await d.view(ids["ann"])
    assert view.state == "busy" and view.call.call_id == call_id
    assert d.calls[call_id].wrap_up_seconds == 7  # the campaign's, read without a lock
    await asyncio.to_thread(d.journal.flush)
    with db(d) as s:
        assert s.get(m.Call, call_id).agent_id == ids["ann"]
        assert s.get(m.AgentStatus, ids["ann"]).state == m.AgentState.BUSY


async def test_pause_takes_only_listed_reasons(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    for bad in ("nap", "no_answer", ""):  # unknown, system-only, empty
        with pytest.raises(c.Refused) as exc:
            await d.pause(ids["ann"], bad)
        assert exc.value.reason == c.INVALID
    assert (await d.view(ids["ann"])).state == "ready"
    await d.pause(ids["ann"], "lunch")
    assert (await d.view(ids["ann"])).pause_reason == "lunch"


async def test_dialer_pool_and_enquiry_listener(world):
    _sessions, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    with db(d) as s:
        camp = p.add_campaign(s, "Out2", mode="power", skill="sales", wrap_up=30)
        p.add_category(s, "Result", campaign="Out2")
        p.add_topics(s, "Result", ["Sale"], campaign="Out2")
        topic = s.scalar(select(m.EnquiryTopic).where(m.EnquiryTopic.name == "Sale")).id
        s.add(m.AgentSkill(agent_id=ids["bob"], skill_id=camp.skill_id))
        row = m.Call(
            id=d.ids.next(m.Call),  # as the dialer does (db/ids.py)
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=camp.id,
            started_at=d.now(),
        )
        s.add(row)
        s.flush()
        call_id, camp_id = row.id, camp.id
    d.load()  # bob's new skill
    await start_work(d, ids["bob"], [lines["100"]])
    pool = d.dialer_pool("sales")
    assert [(a.agent_id, a.state.value, a.endpoint) for a in pool] == [
        (ids["bob"], "ready", "PJSIP/bob")
    ]
    assert {a.agent_id for a in d.dialer_pool()} == {ids["ann"], ids["bob"]}
    heard = []
    d.add_enquiry_listener(heard.append)
    d.add_enquiry_listener(lambda e: 1 / 0)  # a failing listener does not undo anything
    d.outbound_started(
        call_id=call_id,
        agent_id=ids["bob"],
        campaign_id=camp_id,
        contact_id=None,
        number="+4791000002",
        channel_id="ch-out",
        mode="power",
        connected=True,
    )
    d.outbound_ended(call_id)
    (bob,) = d.dialer_pool("sales")
    assert bob.state.value == "wrap_up" and bob.wrap_up_until is not None
    await d.register_enquiry(ids["bob"], call_id, [topic], "sold two")
    assert [
        (e.call_id, e.agent_id, e.campaign_id, e.topic_ids, e.comment, e.mode) for e in heard
    ] == [(call_id, ids["bob"], camp_id, (topic,), "sold two", "power")]
    assert (await d.view(ids["bob"])).call.registered


class ForwardTelephony(FakeTelephony):
    """consult() answers for targets in ``answering``; records the rest."""

    def __init__(self, answering=()):
        super().__init__()
        self.answering = set(answering)
        self.rung: list[str] = []
        self.resumed = 0
        self.transferred: list[str] = []

    async def consult(self, call_id, caller_channel, agent_channel, target, ring):
        self.rung.append(target)
        return f"target-{target}" if target in self.answering else None

    async def resume(self, call_id, caller_channel, agent_channel):
        self.resumed += 1

    async def transfer(self, call_id, caller_channel, agent_channel, target_channel):
        self.transferred.append(target_channel)


async def answering_call(world, tel, hours="open", **client_opts):
    sessions, ids, _ = world
    with transaction(sessions) as s:
        p.add_client(
            s, "Fjord AS", handling="forward", forward1="111", forward2="222", **client_opts
        )
        p.add_line(s, "400", "Fjord", client="Fjord AS")
        client = s.scalar(select(m.Client))
        s.add(
            m.Employee(
                client_id=client.id,
                name="Per",
                handling=m.Handling.FORWARD,
                forward_target1="PJSIP/per",
            )
        )
        s.add(m.Employee(client_id=client.id, name="Kari", handling=m.Handling.NOTE))
        s.flush()
        employees = {e.name: e.id for e in s.scalars(select(m.Employee))}
        line_id = s.scalar(select(m.Line.id).where(m.Line.did == "400"))
        p.grant_lines(s, "ann", ["400"])
    d = make(world, tel)
    await start_work(d, ids["ann"], [line_id])
    call_id = d.call_arrived("ch1", line_id, "91000001", hours=hours)
    await d.accept(ids["ann"], call_id)
    await settle()
    return d, call_id, employees


async def test_forward_falls_back_to_second_target_then_hands_over(world):
    _, ids, _ = world
    tel = ForwardTelephony(answering={"222"})
    d, call_id, _ = await answering_call(world, tel)
    await d.forward(ids["ann"], call_id, None)
    await settle()
    assert tel.rung == ["111", "222"]
    fwd = (await d.view(ids["ann"])).call.forward
    assert (fwd.status, fwd.target, fwd.attempt) == ("announcing", "222", 2)
    await d.forward_connect(ids["ann"], call_id)
    assert tel.transferred == ["target-222"]
    view = await d.view(ids["ann"])
    assert view.call is None and view.state == "ready"  # handed over: the agent is free
    d.caller_left("ch1")  # the caller and the target talk, then hang up
    with db(d) as s:
        row = s.get(m.Call, call_id)
        assert row.state == m.CallState.ENDED and row.end_reason == "forwarded to 222"


async def test_forward_both_fail_returns_to_caller_for_a_note(world):
    _, ids, _ = world
    tel = ForwardTelephony(answering=())
    d, call_id, _ = await answering_call(world, tel)
    await d.forward(ids["ann"], call_id, None)
    await settle()
    assert tel.rung == ["111", "222"] and tel.resumed == 1
    view = await d.view(ids["ann"])
    assert view.call.forward.status == "failed" and view.call.state == "connected"


async def test_target_declining_while_announced_moves_to_the_next(world):
    _, ids, _ = world
    tel = ForwardTelephony(answering={"111", "222"})
    d, call_id, _ = await answering_call(world, tel)
    await d.forward(ids["ann"], call_id, None)
    await settle()
    assert d.forward_target_left("target-111")  # target 1 hangs up on the announcement
    await settle()
    fwd = (await d.view(ids["ann"])).call.forward
    assert (fwd.status, fwd.target) == ("announcing", "222")


async def test_forward_targets_come_from_configuration(world):
    _, ids, _ = world
    tel = ForwardTelephony(answering={"PJSIP/per"})
    d, call_id, employees = await answering_call(world, tel)
    with pytest.raises(c.Refused, match="gets a note"):
        await d.forward(ids["ann"], call_id, employees["Kari"])
    with pytest.raises(c.Refused) as exc:
        await d.forward(ids["ann"], call_id, 9999)
    assert exc.value.reason == c.NOT_FOUND
    await d.forward(ids["ann"], call_id, employees["Per"])
    await settle()
    assert tel.rung == ["PJSIP/per"]


async def test_closed_client_is_not_forwarded(world):
    _, ids, _ = world
    d, call_id, _ = await answering_call(world, ForwardTelephony(), hours="closed")
    with pytest.raises(c.Refused, match="closed"):
        await d.forward(ids["ann"], call_id, None)


async def test_waiting_customer_callbacks_per_campaign(world):
    _sessions, _ids, lines = world
    d = make(world)
    with db(d) as s:
        camp = p.add_campaign(s, "Out3", mode="predictive", caller_id="4721000009")
        p.set_campaign_status(s, "Out3", "running")
        s.add(
            m.Contact(
                campaign_id=camp.id,
                phone="+4791000003",
                status=m.ContactStatus.NOT_ANSWERED,
                attempts=1,
            )
        )
        camp_id = camp.id
    assert d.waiting_for_campaign(camp_id) == 0
    d.call_arrived("ch-cb", lines["100"], "91000003")  # the contact calls back
    d.call_arrived("ch-other", lines["100"], "91000004")
    assert d.waiting_for_campaign(camp_id) == 1
    d.caller_left("ch-cb")
    assert d.waiting_for_campaign(camp_id) == 0


async def test_a_contact_with_a_scheduled_callback_calling_in_is_a_customer_callback(world):
    """Scheduling a callback resets the attempts to 0: the contact is still open (F-I3)."""
    _sessions, _ids, lines = world
    d = make(world)
    with db(d) as s:
        camp = p.add_campaign(s, "Out4", mode="power", caller_id="4721000008")
        p.set_campaign_status(s, "Out4", "paused")
        later = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
        dialed = m.Contact(
            campaign_id=camp.id, phone="+4791000005", status=m.ContactStatus.CALLBACK, attempts=0
        )
        dialed.last_attempt_at, dialed.next_attempt_at = later - dt.timedelta(days=1), later
        fresh = m.Contact(campaign_id=camp.id, phone="+4791000006", status=m.ContactStatus.NEW)
        s.add_all([dialed, fresh])
        s.flush()
        camp_id, dialed_id = camp.id, dialed.id
    call = d.calls[d.call_arrived("ch-a", lines["100"], "91000005")]
    assert (call.kind.value, call.contact_id, call.campaign_id) == (
        "customer_callback",
        dialed_id,
        camp_id,
    )
    # a contact never dialed is not calling back (as tests/integration/test_distributor_pg.py)
    call = d.calls[d.call_arrived("ch-b", lines["100"], "91000006")]
    assert (call.kind.value, call.contact_id) == ("service", None)


async def test_a_call_to_a_campaigns_caller_id_is_a_callback_for_its_agents(world):
    """F-I3 without a line: the campaign's skill picks the agents; an unknown or withheld
    caller is still a callback of that campaign (with no contact)."""
    sessions, ids, lines = world
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "Out5", mode="power", skill="sales", caller_id="4721000007")
        p.update_agent(s, "bob", add_skills=["sales"])
        camp_id = camp.id
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    for channel, caller in (("ch-x", "91000007"), ("ch-y", "anonymous")):
        call = d.calls[d.call_arrived(channel, None, caller, "4721000007", campaign_id=camp_id)]
        assert (call.kind.value, call.campaign_id, call.skill, call.line_id, call.contact_id) == (
            "customer_callback",
            camp_id,
            "sales",
            None,
            None,
        )
    assert d.waiting_for_campaign(camp_id) == 2
    assert (await d.view(ids["ann"])).offer is None  # not the campaign's agent
    await start_work(d, ids["bob"], [])
    assert (await d.view(ids["bob"])).offer.caller == "91000007"


async def test_a_withheld_caller_on_a_hotline_gets_no_contact(world):
    """A hotline creates a contact for a new caller (F-I3), never one for a withheld caller:
    that would store 'anonymous' as a phone number agents can see."""
    _sessions, _ids, lines = world
    d = make(world)
    call = d.calls[d.call_arrived("ch-h", lines["300"], "anonymous")]
    assert (call.kind.value, call.contact_id) == ("new_customer", None)
    with db(d) as s:
        assert s.scalars(select(m.Contact)).all() == []


async def test_a_withheld_caller_who_gives_up_is_not_on_the_missed_call_list(world):
    _sessions, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["200"]])
    d.call_arrived("ch-w", lines["100"], "anonymous")
    d.call_arrived("ch-n", lines["100"], "91000008")
    d.caller_left("ch-w")
    d.caller_left("ch-n")
    assert [mc.caller for mc in (await d.view(ids["ann"])).missed] == ["91000008"]


# ------------------------------------------------------------ supervision (panel, F-M1)


async def test_panel_snapshot_agents_lines_and_calls(world):
    _, ids, lines = world
    clock = StepClock()
    d = make(world, clock=clock)
    hub_sub = d.hub.subscribe()
    await start_work(d, ids["ann"], [lines["100"]])
    await d.login(ids["bob"])
    await d.choose_lines(ids["bob"], [lines["100"], lines["200"]])
    first = d.call_arrived("ch1", lines["200"], "+4791000001")  # bob is paused: waits
    clock.tick(5)
    d.call_arrived("ch2", lines["200"], "+4791000002")
    d.call_arrived("ch3", lines["100"], "+4791000003")  # offered to ann
    clock.tick(2)
    snap = d.panel_snapshot()
    assert snap.at == clock.t
    agents = {a.username: a for a in snap.agents}
    assert agents["ann"].state == "offered" and agents["ann"].chosen == (lines["100"],)
    assert agents["ann"].call_id is not None and agents["ann"].endpoint == "PJSIP/ann"
    assert agents["bob"].state == "paused" and agents["bob"].pause_reason == "login"
    assert agents["cid"].state == "logged_out" and agents["cid"].call_id is None
    by_line = {ln.line_id: ln for ln in snap.lines}
    high = by_line[lines["200"]]
    assert (high.waiting, high.staffed, high.ready, high.priority) == (2, 1, 0, 9)
    assert high.oldest_queued_at == clock.t - dt.timedelta(seconds=7)
    assert by_line[lines["100"]].waiting == 1  # offered still counts as waiting
    assert by_line[lines["100"]].staffed == 2  # ann and bob (paused) chose it
    calls = {c.call_id: c for c in snap.calls}
    assert calls[first].phase == "waiting" and calls[first].direction == "inbound"
    assert [c.phase for c in snap.calls].count("offered") == 1
    kinds = {type(e).__name__ for e in iter(hub_sub.get_nowait, None)}
    assert "PanelChanged" in kinds


async def test_panel_changed_even_with_nobody_logged_in(world):
    _, _ids, lines = world
    d = make(world)
    sub = d.hub.subscribe(sv.PanelChanged)
    d.call_arrived("ch1", lines["100"], "+4791000001")
    assert sub.get_nowait() is not None


async def test_line_priority_change_steers_the_next_decision(world):
    _sessions, ids, lines = world
    clock = StepClock()
    d = make(world, clock=clock)
    high = d.call_arrived("ch-high", lines["200"], "+4791000002")  # priority 9
    clock.tick()
    low = d.call_arrived("ch-low", lines["100"], "+4791000001")  # priority 1
    with db(d) as s:
        s.get(m.Line, lines["100"]).priority = 50
    d.lines_changed()
    assert d.panel_snapshot().lines[0].priority == 50
    await start_work(d, ids["ann"], [lines["100"], lines["200"]])
    assert (await d.view(ids["ann"])).offer.call_id == low
    await start_work(d, ids["bob"], [lines["100"], lines["200"]])
    assert (await d.view(ids["bob"])).offer.call_id == high


async def test_force_pause_takes_system_reasons_and_waits_for_the_call(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    with pytest.raises(c.Refused):
        await d.pause(ids["ann"], "supervisor")  # the agent itself may not use it
    await d.force_pause(ids["ann"], "supervisor")
    view = await d.view(ids["ann"])
    assert (view.state, view.pause_reason) == ("paused", "supervisor")
    with pytest.raises(c.Refused):
        await d.force_pause(ids["ann"], "no-such-reason")
    await d.ready(ids["ann"])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    await d.force_pause(ids["ann"], "supervisor")  # busy: after the call
    row = next(a for a in d.panel_snapshot().agents if a.agent_id == ids["ann"])
    assert (row.state, row.pause_requested) == ("busy", "supervisor")


async def test_note_is_stored_and_the_clients_own_number_refused(world):
    _sessions, ids, _ = world
    d, call_id, employees = await answering_call(
        world, ForwardTelephony(), own_numbers=["4722000000"]
    )
    woke = []
    d.on_note = lambda: woke.append(1)
    with pytest.raises(c.Refused, match=r"own number|client.s own"):
        await d.take_note(ids["ann"], call_id, "Call me", "Ola", "+47 22 00 00 00", None)
    with pytest.raises(c.Refused, match="empty"):
        await d.take_note(ids["ann"], call_id, "  ", "Ola", "91234567", None)
    await d.take_note(
        ids["ann"], call_id, "Leak in the basement", "Ola", "91234567", employees["Per"]
    )
    assert woke == [1] and (await d.view(ids["ann"])).call.notes == 1
    with db(d) as s:
        note = s.scalar(select(m.CallNote))
        assert (note.message, note.callback_number, note.call_id) == (
            "Leak in the basement",
            "+4791234567",
            call_id,
        )
        assert note.mail_status == m.MailStatus.PENDING


async def test_desk_hangup_of_an_outbound_call_unblocks_the_agent(world):
    _sessions, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    with db(d) as s:
        camp = p.add_campaign(s, "Out4", mode="power", wrap_up=0)
        row = m.Call(
            id=d.ids.next(m.Call),  # as the dialer does (db/ids.py)
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=m.CallState.CONNECTED,
            campaign_id=camp.id,
            started_at=d.now(),
        )
        s.add(row)
        s.flush()
        call_id = row.id
    d.outbound_started(
        call_id=call_id,
        agent_id=ids["ann"],
        campaign_id=camp.id,
        contact_id=None,
        number="+4791000005",
        channel_id="ch-contact",
        mode="power",
        connected=True,
    )
    await d.hangup(ids["ann"], call_id)  # from the desk
    await settle()
    assert tel.hung_up == ["ch-contact"]
    d.outbound_ended(call_id)  # the dialer hears of it afterwards: nothing more to do
    (ann,) = [a for a in d.dialer_pool() if a.agent_id == ids["ann"]]
    assert ann.state.value == "ready" and not ann.on_outbound_call
    assert not (await d.view(ids["ann"])).blocked


async def test_active_exception_overrides_the_employee(world):
    _sessions, ids, _ = world
    tel = ForwardTelephony(answering={"333"})
    d, call_id, employees = await answering_call(world, tel)
    with db(d) as s:
        client = s.scalar(select(m.Client))
        now = d.now()
        s.add(
            m.ClientException(
                client_id=client.id,
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + dt.timedelta(hours=1),
                instruction="All to 333",
                handling=m.Handling.FORWARD,
                forward_target1="333",
            )
        )
    await d.forward(ids["ann"], call_id, employees["Per"])
    await settle()
    assert tel.rung == ["333"]


async def test_an_arrival_pushes_only_to_desktops_that_show_its_line(world):
    sessions, ids, lines = world
    with transaction(sessions) as s:
        p.add_agent(s, "dag", endpoint="PJSIP/dag", lines=["200"])
        dag = s.scalar(select(m.Agent).where(m.Agent.username == "dag")).id
    hub = EventHub()
    d = Distributor(sessions, hub, FakeTelephony(), StepClock())
    d.load()
    await d.login(ids["ann"])
    await d.login(dag)
    sub = hub.subscribe(c.AgentViewChanged, c.DeskLineCount)  # a view or a count (#19)
    d.call_arrived("ch1", lines["100"], "91000001")
    pushed = set()
    while (event := sub.get_nowait()) is not None:
        pushed.add(event.agent_id)
    # dag serves only line 200: its desktop did not change; bob and cid (logged out) may
    # serve line 100: their desks show its queue (choosing their lines)
    assert pushed == {ids["ann"], ids["bob"], ids["cid"]}
    assert (await d.view(dag)).lines[0].waiting == 0


async def test_a_pause_requested_during_a_call_can_be_taken_back(world):
    _, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    with pytest.raises(c.Refused) as exc:
        await d.cancel_pause(ids["ann"])  # nothing requested
    assert exc.value.reason == c.ILLEGAL_STATE
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    await d.pause(ids["ann"], "lunch")
    view = await d.view(ids["ann"])
    assert (view.state, view.pause_requested) == ("busy", "lunch")
    await d.cancel_pause(ids["ann"])
    assert (await d.view(ids["ann"])).pause_requested is None
    d.caller_left("ch1")
    view = await d.view(ids["ann"])
    assert (view.state, view.pause_reason) == ("ready", None)  # not paused after the call


async def test_a_missed_call_callback_and_the_next_arrival_get_distinct_ids(world):
    _, ids, lines = world
    d = make(world)
    await start_work(d, ids["ann"], [lines["100"]])
    await d.pause(ids["ann"], "lunch")
    d.call_arrived("ch1", lines["100"], "91000001")
    d.caller_left("ch1")  # a missed call
    missed_id = next(iter(d.missed))
    await d.callback_missed(ids["ann"], missed_id)  # a call row of its own
    await settle()
    later = d.call_arrived("ch2", lines["100"], "91000002")
    await d.journal.drain()
    assert d.journal.failures == 0
    with db(d) as s:
        assert s.get(m.Call, later).channel_id == "ch2"
        assert s.get(m.MissedCall, missed_id).callback_call_id not in (None, later)
