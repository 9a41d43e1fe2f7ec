"""The dialer's loop and call flows against SQLite, the real distributor and a fake
telephony (tests/integration/test_dialer_e2e.py runs the same on Asterisk)."""

import asyncio
import datetime as dt
import itertools

import pytest
from sqlalchemy import event, select

from asterisk_cube.acd.distributor import Clock as DistributorClock
from asterisk_cube.acd.distributor import DialerAgent, Distributor, EnquiryRegistered
from asterisk_cube.ari.outbound import DialResult
from asterisk_cube.core import contacts as core
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.agents import AgentState
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.dialer.pacer import (
    HistoryCall,
    history_observations,
    pacing_config,
    pacing_state,
)
from asterisk_cube.dialer.service import Dialer
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p


class FakeTelephony:
    """Contacts behave by number: ``answer`` (after ``ring`` s, hang up after ``talk`` s, or
    never with talk=None), ``never`` (rings out), ``busy``. Agents answer unless listed in
    ``silent_agents``. An agent leg hung up stays in "Asterisk" ``teardown`` s more (as
    a real one does while its CANCEL or BYE goes out): ``max_legs_per_phone`` is the most
    legs one agent's phone had at once."""

    connected = True

    def __init__(self):
        self.contacts: dict[str, tuple] = {}
        self.silent_agents: set[str] = set()
        self.ids = itertools.count(1)
        self.gone_futures: dict[str, asyncio.Future] = {}
        self.bridged: list[tuple[int, list[str]]] = []
        self.played: list[str] = []
        self.dialed: list[str] = []
        self.live: set[str] = set()
        self.max_live_contacts = 0
        self.teardown = 0.0
        self.agent_legs: dict[str, str] = {}  # agent leg -> endpoint, until destroyed
        self.max_legs_per_phone = 0
        # the bridge requests Asterisk would get, in order (and each agent's answer):
        # ("create", call), ("add", call, channels), ("answered", call), ("destroy", call)
        self.requests: list[tuple] = []
        self.bridges: dict[int, list[str]] = {}  # call's bridge in "Asterisk" -> members
        self.made: set[int] = set()  # made and not destroyed yet (as OutboundApp keeps)

    def new_channel_id(self, agent=False):
        return f"{'a' if agent else 'c'}{next(self.ids)}"

    def endpoint_for(self, number):
        return f"PJSIP/{number}@carrier"

    def _watch(self, channel):
        self.gone_futures[channel] = asyncio.get_running_loop().create_future()

    def gone(self, channel):
        fut = self.gone_futures.get(channel)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(None)
        return fut

    def forget(self, channel):
        pass

    def _leave(self, channel):
        self.live.discard(channel)
        fut = self.gone_futures.get(channel)
        if fut is not None and not fut.done():
            fut.set_result(None)
        if channel in self.agent_legs:
            loop = asyncio.get_running_loop()
            loop.call_later(self.teardown, self.agent_legs.pop, channel, None)

    async def wait_destroyed(self, channel, timeout=2.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while channel in self.agent_legs:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def dial_contact(self, call_id, channel, number, *, caller_id, timeout, amd=False):
        self._watch(channel)
        self.dialed.append(number)
        self.live.add(channel)
        self.max_live_contacts = max(
            self.max_live_contacts, sum(ch.startswith("c") for ch in self.live)
        )
        kind, *rest = self.contacts.get(number, ("never",))
        if kind == "busy":
            self._leave(channel)
            return DialResult(False, channel, cause=17, ring_seconds=0.0)
        if kind == "never":
            await asyncio.sleep(timeout)
            self._leave(channel)
            return DialResult(False, channel, cause=19, ring_seconds=timeout)
        ring, talk = rest
        await asyncio.sleep(ring)
        if talk is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(talk, self._leave, channel)
        return DialResult(True, channel, ring_seconds=ring)

    async def ring_agent(self, call_id, channel, endpoint, *, auto_answer, timeout, caller_id=""):
        self._watch(channel)
        self.agent_legs[channel] = endpoint
        legs = sum(e == endpoint for e in self.agent_legs.values())
        self.max_legs_per_phone = max(self.max_legs_per_phone, legs)
        if endpoint in self.silent_agents:
            await asyncio.sleep(timeout)
            self._leave(channel)  # as OutboundApp.ring_agent hangs it up
            return False
        self.live.add(channel)
        self.requests.append(("answered", call_id))
        return True

    async def open_bridge(self, call_id, channels):
        self.made.add(call_id)
        self.requests.append(("create", call_id))
        self.bridges[call_id] = []
        await self._add(call_id, channels)

    async def _add(self, call_id, channels):
        self.requests.append(("add", call_id, tuple(channels)))
        if call_id not in self.bridges:
            raise RuntimeError("Bridge not found")
        if any(ch not in self.live for ch in channels):
            raise RuntimeError("Channel not found")
        self.bridges[call_id] += channels

    async def join(self, call_id, channel):
        await self._add(call_id, [channel])
        self.bridged.append((call_id, list(self.bridges[call_id])))

    async def bridge(self, call_id, channels):
        await self.open_bridge(call_id, channels)
        self.bridged.append((call_id, list(channels)))

    async def end_call(self, call_id):
        if call_id in self.made:  # as OutboundApp.end_call: one DELETE per bridge made
            self.made.discard(call_id)
            self.requests.append(("destroy", call_id))
            self.bridges.pop(call_id, None)

    async def play(self, channel, media, timeout=15.0):
        self.played.append(channel)
        await asyncio.sleep(0.01)
        played = channel in self.live
        self.requests.append(("play", channel, played))
        return played

    async def start_tone(self, channel, tone="tone:ring"):
        return None

    async def stop_playback(self, playback_id):
        pass

    async def hangup(self, channel):
        if channel:
            self._leave(channel)

    async def release(self, call_id, channels):  # as the distributor's telephony
        for channel in channels:
            await self.hangup(channel)


#: The loop tests run on looptime's fast-forwarding event loop: sleeps, timeouts and the
#: dialer's budgets (0.1-0.3 s here) are measured on the loop's fake clock, which moves only
#: when every task waits, so a busy machine cannot make them run out (issue #11 item 11).
pytestmark = pytest.mark.looptime


class Clock:
    """The dialer's wall clock on the event loop's (fake) time, plus ``offset``."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.base = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.loop.time())
        self.offset = dt.timedelta(0)

    def __call__(self):
        return self.base + dt.timedelta(seconds=self.loop.time()) + self.offset


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        for n in range(1, 5):
            p.add_agent(s, f"agent{n}", endpoint=f"PJSIP/agent{n}", skills=["out"])
        agents = [a.id for a in s.scalars(select(m.Agent).order_by(m.Agent.id))]
    return sessions, agents


async def inline(fn, /, *args, **kwargs):
    """The dialer's ``offload`` run on the loop: a worker thread's real time would move
    looptime's fake clock (it steps in real time while executor futures are pending)."""
    return fn(*args, **kwargs)


def make(world, mode, contacts, clock=None, offload=inline, **campaign):
    sessions, _agents = world
    with transaction(sessions) as s:
        campaign.setdefault("wrap_up", 0)
        camp = p.add_campaign(s, "Out", mode=mode, skill="out", **campaign)
        p.set_campaign_status(s, "Out", "running")
        for phone in contacts:
            s.add(m.Contact(campaign_id=camp.id, phone=phone))
        cid = camp.id
    hub = EventHub()
    clock = clock or Clock()
    # agents' states (wrap-up ends, idle times) on the same clock as the dialer
    distributor = Distributor(sessions, hub, clock=DistributorClock(now=clock))
    distributor.load()
    tel = FakeTelephony()
    dialer = Dialer(
        sessions,
        distributor,
        hub,
        tel,
        clock=clock,
        monotonic=asyncio.get_running_loop().time,
        tick=0.01,
        ring_timeout=0.15,
        agent_ring_timeout=0.1,
        connect_budget=0.3,
        min_agent_time=0.05,
        fair_answer_time=0.1,
        bridge_margin=0.01,
        offload=offload,
    )
    return dialer, distributor, tel, cid


def record_if_on_loop(monkeypatch, module, name) -> list[bool]:
    """Wrap ``module.name``; each call appends whether it ran on an event loop's thread."""
    original = getattr(module, name)
    on_loop: list[bool] = []

    def watched(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, watched)
    return on_loop


async def ready(distributor, agent_ids):
    for agent_id in agent_ids:
        await distributor.login(agent_id)
        await distributor.ready(agent_id)


async def run_until(dialer, predicate, timeout=10.0):
    task = asyncio.create_task(dialer.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def statuses(sessions, cid):
    with transaction(sessions) as s:
        rows = s.scalars(
            select(m.Contact).where(m.Contact.campaign_id == cid).order_by(m.Contact.id)
        )
        return [r.status.value for r in rows]


def settled(sessions, cid, dialer):
    return not dialer.lines and all(st not in ("new", "dialing") for st in statuses(sessions, cid))


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


def agent(agent_id, state, **kw):
    base = dict(
        since=NOW - dt.timedelta(seconds=30),
        idle_since=None,
        wrap_up_until=None,
        pause_requested=None,
        endpoint="PJSIP/x",
        on_outbound_call=False,
        dialer_dialing=False,
    )
    return DialerAgent(agent_id, state, **{**base, **kw})


NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def test_pacing_state_counts_who_can_take_a_call():
    agents = [
        agent(1, AgentState.READY),
        agent(2, AgentState.READY, endpoint=None),  # no phone: cannot be connected
        agent(3, AgentState.BUSY),
        agent(4, AgentState.BUSY, pause_requested="lunch"),  # pausing after this call
        agent(5, AgentState.WRAP_UP, wrap_up_until=NOW + dt.timedelta(seconds=4)),
        agent(
            6, AgentState.WRAP_UP, wrap_up_until=NOW + dt.timedelta(seconds=4), pause_requested="x"
        ),
        agent(7, AgentState.PAUSED),
        agent(8, AgentState.OFFERED),  # an inbound offer: about to be busy
    ]
    est = pc.default_estimates(15.0)
    state = pacing_state(
        agents,
        NOW,
        estimates=est,
        config=pc.PacingConfig(),
        ringing=(1.0, 2.0),
        waiting=1,
        abandon=pc.AbandonStats(1, 50),
    )
    assert state.ready_agents == 1
    assert state.talking == (30.0, 30.0)
    assert state.wrapping == (4.0,)
    assert state.paused_agents == 3
    assert (state.dialing, state.waiting_calls, state.abandon.rate) == ((1.0, 2.0), 1, 0.02)


def test_pacing_config_from_the_campaign(world):
    sessions, _ = world
    with transaction(sessions) as s:
        p.add_campaign(s, "P", mode="power", abandon_cap="2%")
        p.add_campaign(s, "Q", mode="predictive")
        power, predictive = (load_campaign(s, c.id) for c in s.scalars(select(m.Campaign)))
    assert pacing_config(power).mode == pc.PacingMode.POWER
    assert pacing_config(power).abandon_cap == 0.02
    assert pacing_config(predictive).mode == pc.PacingMode.PREDICTIVE
    assert pacing_config(predictive).max_ratio == pc.DEFAULT_MAX_DIAL_RATIO == 10.0


async def test_the_pacer_plans_with_the_window_the_dialer_connects_in(world):
    """One number: an answered call waits for an agent to free up exactly as long as the
    pacer assumes (abandon budget less the agent's answer time less the bridge margin)."""
    dialer, _distributor, _tel, cid = make(world, "predictive", ["+4790000001"])
    dialer._reload()
    window = 0.3 - 0.05 - 0.01
    assert dialer.connect_window == pytest.approx(window)
    assert dialer.runs[cid].learning.grace_seconds == pytest.approx(window)
    assert dialer.runs[cid].learning.estimates().grace_seconds == pytest.approx(window)
    assert pytest.approx(1.4) == pc.CONNECT_WINDOW  # 2 s - 0.5 s - 0.1 s, the defaults


# ------------------------------------------------------------ learning from history


async def test_a_restarted_dialer_learns_from_the_calls_already_made(world):
    """Ring and talk times learned in one run are there again after a restart (loaded
    from the campaign's calls in the database), not the generic prior."""
    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(12)]
    dialer, distributor, tel, cid = make(world, "power", phones, max_attempts=1)
    for i, phone in enumerate(phones):
        tel.contacts[phone] = (
            ("answer", 0.02, 0.05) if i % 3 == 0 else ("never",) if i % 3 == 1 else ("busy",)
        )
    await ready(distributor, agents[:2])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    live = dialer.runs[cid].learning
    assert (live.dials.dials, sum(live.dials.person), live.talk.calls) == (12, 4, 4)
    (row,) = dialer.snapshot()
    assert (row["agents"], row["dials_per_minute"], row["answer_rate"]) == (2, 12.0, 0.333)

    def restart(**options):
        again = Dialer(
            sessions, Distributor(sessions, EventHub()), None, FakeTelephony(), **options
        )
        again._reload()
        return again.runs[cid].learning

    learned = restart()
    assert learned.dials == live.dials  # the same counts in the same ring-time bins
    assert learned.talk == live.talk
    est, prior = learned.estimates(), pc.default_estimates()
    assert est.answer_cdf != prior.answer_cdf and est.talk_sf != prior.talk_sf
    # history_days=0: no history, the prior
    assert restart(history_days=0).dials.dials == 0
    # only the window's days count
    with transaction(sessions) as s:
        for call in s.scalars(select(m.Call)):
            call.started_at -= dt.timedelta(days=3)
    assert restart(history_days=2).dials.dials == 0
    assert restart(history_days=4).dials.dials == 12


def test_history_rows_as_the_live_dialer_saw_them():
    t0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

    def at(seconds):
        return t0 + dt.timedelta(seconds=seconds)

    S = m.CallState
    calls = [
        HistoryCall(t0, at(3.5), at(4), at(64), S.ENDED, "contact_hangup"),  # talked 60 s
        HistoryCall(t0, at(2), None, at(6), S.ABANDONED, "abandoned_no_agent"),
        HistoryCall(t0, None, None, at(25), S.NO_ANSWER, "no_answer"),
        HistoryCall(t0, None, None, at(0.2), S.FAILED, "busy"),
        HistoryCall(t0, None, None, at(7), S.MACHINE, "machine"),  # AMD: not a person
        HistoryCall(t0, at(5), None, at(9), S.ENDED, "lost_during_restart"),
        HistoryCall(t0, None, None, at(8), S.NO_ANSWER, "agent_hangup_ringing"),
        HistoryCall(t0, None, None, at(1), S.FAILED, "error"),
    ]
    dials, talks = history_observations(calls)
    assert dials == [(3.5, True), (2.0, True), (25.0, False), (0.2, False), (7.0, False)]
    assert talks == [60.0]


def test_learning_history_reads_the_campaigns_finished_calls(world):
    sessions, agents = world
    t0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "H", mode="power")
        other = p.add_campaign(s, "Other", mode="power")
        for n, (campaign_id, minute) in enumerate([(camp.id, 1), (other.id, 2), (camp.id, 3)]):
            contact = m.Contact(campaign_id=campaign_id, phone=f"+4790000{n:03d}")
            s.add(contact)
            s.flush()
            started = t0 + dt.timedelta(minutes=minute)
            claim = records.Claim(contact.id, campaign_id, contact.phone, None, None, 1)
            call_id = records.open_call(s, claim, "power", "n1", started)
            records.contact_dialed(s, call_id, f"ch{n}", "PJSIP/x", started)
            records.contact_answered(s, call_id, started + dt.timedelta(seconds=4))
            records.call_connected(s, call_id, agents[0], started + dt.timedelta(seconds=4.1))
            records.call_finished(
                s, call_id, m.CallState.ENDED, "agent_hangup", started + dt.timedelta(seconds=34)
            )
        # one still going on: not learned from yet
        contact = m.Contact(campaign_id=camp.id, phone="+4790000999")
        s.add(contact)
        s.flush()
        claim = records.Claim(contact.id, camp.id, contact.phone, None, None, 1)
        open_id = records.open_call(s, claim, "power", "n1", t0 + dt.timedelta(minutes=4))
        records.contact_dialed(s, open_id, "ch9", "PJSIP/x", t0 + dt.timedelta(minutes=4))
        cid = camp.id
    with transaction(sessions) as s:
        rows = records.learning_history(s, cid, t0)
        assert [r.dialed_at for r in rows] == [
            t0 + dt.timedelta(minutes=1),
            t0 + dt.timedelta(minutes=3),
        ]  # oldest first, this campaign's, finished
        assert history_observations(rows) == ([(4.0, True), (4.0, True)], [29.9, 29.9])
        (last,) = records.learning_history(s, cid, t0, limit=1)  # the newest
        assert last.dialed_at == t0 + dt.timedelta(minutes=3)
        assert records.learning_history(s, cid, t0 + dt.timedelta(minutes=2))[0] == last


async def test_a_step_without_due_callbacks_costs_no_callback_claim_per_free_agent(world):
    """Every free agent used to cost a claim statement of its own for callbacks, on every
    step, in every campaign (most of the event loop's time in the opening burst of the day
    test): one look says none are due."""
    sessions, agents = world
    dialer, distributor, _tel, _cid = make(world, "power", [], max_attempts=1)
    await ready(distributor, agents)
    engine = sessions.kw["bind"]
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE CONTACTS"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        dialer.step()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(updates) <= 1, f"{len(updates)} claim statements for {len(agents)} free agents"


async def test_a_burst_of_wake_ups_is_one_step_not_one_each(world):
    """Every agent change wakes the dialer: in a burst they collapse into a few steps."""
    dialer, _distributor, _tel, _cid = make(world, "power", [])
    dialer.tick, dialer.coalesce = 1.0, 0.05
    task = asyncio.create_task(dialer.run())
    try:
        while not dialer.step_seconds.count:
            await asyncio.sleep(0.001)
        before = dialer.step_seconds.count
        for _ in range(40):  # 40 wake-ups within 40 ms
            dialer.wake()
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.06)
        steps = dialer.step_seconds.count - before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert 1 <= steps <= 3, steps


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


async def test_pool_claims_run_off_the_event_loop(world, monkeypatch):
    """Issue #13 / #11 item 11: the power/predictive claims (many contacts, the dialer's
    biggest DB work: 17 % of the loop's samples in the e2e day's opening burst) ran on
    the event loop, delaying every StasisStart behind them; they run in a worker thread."""
    from asterisk_cube.dialer import rounds

    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(4)]
    dialer, distributor, tel, cid = make(
        world, "power", phones, max_attempts=1, offload=asyncio.to_thread
    )
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    on_loop = record_if_on_loop(monkeypatch, rounds, "claim_contacts")
    await ready(distributor, agents[:2])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    assert statuses(sessions, cid) == ["done"] * 4 and len(tel.bridged) == 4
    assert on_loop and not any(on_loop), on_loop
    assert tel.max_live_contacts <= 2  # power: still one line per ready agent
    # what stays on the loop is measured (reload, stats); the claims are not among it,
    # nor a call's writes (dialed, bridged, finish: off the loop too since the dialer
    # day's p99 loop lag of 743 ms under load)
    kinds = set(dialer.db_on_loop_by)
    assert kinds and not kinds & {"claim", "dialed", "bridged", "agent_leg", "finish"}
    assert dialer.db_on_loop.count > 0


@pytest.mark.parametrize("what", ["campaign paused", "Asterisk lost"])
async def test_a_claim_landing_after_its_campaign_stopped_dials_nothing(world, what):
    """The claim lands after the campaign stopped (or ARI went away): its contacts go
    back, not dialed."""
    sessions, agents = world
    gate = asyncio.Event()

    async def slow(fn, /, *args, **kwargs):
        await gate.wait()
        return fn(*args, **kwargs)

    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], offload=slow)
    await ready(distributor, agents[:1])
    dialer.step()
    assert dialer.runs[cid].claiming
    if what == "campaign paused":
        with transaction(sessions) as s:
            p.set_campaign_status(s, "Out", "paused")
        dialer.refresh()
        dialer.step()  # the reload sees it stopped
    else:
        tel.connected = False
    gate.set()
    while any(t.get_name().startswith("claim-") for t in dialer.tasks):
        await asyncio.sleep(0.01)
    assert not tel.dialed and not dialer.lines
    assert statuses(sessions, cid) == ["new"]
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert (call.state, call.end_reason) == (m.CallState.FAILED, "not_dialed")


async def test_a_finished_attempt_is_committed_before_its_contact_is_offered_again(world):
    """Issue #11 item 11: a call's end is written off the event loop (the dialer day's
    loop lag p99 743 ms under load, finish the largest share). Until that write is
    committed the line stays in flight and its contact stays claimed: not dialed again
    even when its retry is due, and counted by the pacer; after the commit it is."""
    sessions, agents = world
    phone = "+4790000001"
    release = asyncio.Event()
    held: list[str] = []

    async def finish_waits(fn, /, *args, **kwargs):
        if args and args[0] == "finish" and not release.is_set():
            held.append(args[0])
            await release.wait()
        return fn(*args, **kwargs)

    clock = Clock()
    dialer, distributor, tel, cid = make(
        world, "power", [phone], clock=clock, offload=finish_waits, max_attempts=3
    )
    tel.contacts[phone] = ("busy",)
    await ready(distributor, agents[:1])
    task = asyncio.create_task(dialer.run())
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 5.0  # the loop's (fake) clock
        while not held:
            assert loop.time() < until, "the call's end was not written off the loop"
            await asyncio.sleep(0.01)
        (line,) = dialer.lines.values()
        clock.offset += dt.timedelta(hours=2)  # the busy retry (60 min) is due
        await asyncio.sleep(3.0)  # many steps and claims
        assert tel.dialed == [phone] and dialer.lines == {line.call_id: line}
        assert statuses(sessions, cid) == ["dialing"]  # still claimed in the database
        release.set()
        until = loop.time() + 5.0
        while len(tel.dialed) < 2:
            assert loop.time() < until, "not dialed again once its end was written"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with transaction(sessions) as s:
        first = s.get(m.Call, line.call_id)
        assert first.state == m.CallState.FAILED and first.end_reason == "busy"


async def test_preview_and_callback_claims_run_off_the_event_loop(world, monkeypatch):
    """Issue #11 item 11: the preview and callback claims (one contact for one agent,
    the second largest share of the dialer day's DB work on the loop) run in a worker
    thread too; the agent is held while its claim is in flight (one contact at a time)."""
    from asterisk_cube.dialer import rounds

    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(4)]
    dialer, distributor, tel, cid = make(
        world, "preview", phones, max_attempts=1, offload=asyncio.to_thread
    )
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    with transaction(sessions) as s:  # one contact has a callback due now, for agent 1
        contact = s.scalars(select(m.Contact).where(m.Contact.phone == phones[3])).one()
        rules = load_campaign(s, cid).rules
        now = dt.datetime.now(dt.UTC)
        records.apply_outcome(
            s, contact.id, Outcome.CALLBACK, rules, now, core.Callback(now, agents[0], "")
        )
    on_loop = record_if_on_loop(monkeypatch, rounds, "claim_contacts")
    await ready(distributor, agents[:2])
    # every contact done, not just "settled": the due callback counts as settled while
    # its claim is still in flight in the worker thread (failed so under load)
    await run_until(dialer, lambda: not dialer.lines and statuses(sessions, cid) == ["done"] * 4)
    assert statuses(sessions, cid) == ["done"] * 4 and len(tel.bridged) == 4
    assert on_loop and not any(on_loop), on_loop
    assert "claim" not in dialer.db_on_loop_by
    with transaction(sessions) as s:  # the callback went to its agent
        calls = s.scalars(select(m.Call).where(m.Call.contact_id == contact.id)).all()
        assert [c.agent_id for c in calls] == [agents[0]]


async def test_stopping_ends_the_lines_nobody_talks_on_and_leaves_the_talking_ones(world):
    """serve stopping (the dialer cancelled): a contact still ringing was left ringing in
    Asterisk until the originate timeout (seen after the demo's Ctrl-C); a call with an
    agent on it goes on (the next start recovers it)."""
    _sessions, agents = world
    phones = ["+4790000001", "+4790000002"]
    dialer, distributor, tel, _cid = make(world, "power", phones, max_attempts=1)
    tel.contacts[phones[0]] = ("answer", 0.01, 100.0)  # talks for long
    tel.contacts[phones[1]] = ("never",)
    await ready(distributor, agents[:2])
    task = asyncio.create_task(dialer.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (tel.bridged and len(tel.dialed) == 2):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.001)
    talking = {ch for _call, chans in tel.bridged for ch in chans}
    ringing = {ch for ch in tel.live if ch.startswith("c")} - talking
    assert ringing, tel.live
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not ringing & tel.live  # hung up
    assert talking <= tel.live  # still talking


async def test_a_step_with_no_campaign_running_reads_no_agents(world, monkeypatch):
    """An inbound-only center wakes the dialer on every agent and queue change (issue
    #19): with nothing running, a step does not build the agents' dialer pool."""
    dialer, distributor, _tel, _cid = make(world, "power", [], max_attempts=1)
    with transaction(world[0]) as s:
        p.set_campaign_status(s, "Out", "stopped")
    dialer._reload()
    assert not dialer.runs
    pools = []
    monkeypatch.setattr(distributor, "dialer_pool", lambda *a: pools.append(a) or [])
    dialer.step()
    assert pools == []
