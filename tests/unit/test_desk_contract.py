"""The desk contract (issue #13): the same scenarios against ``FakeDesk`` (tests/fakes/desk.py,
which the web and browser tests use) and the real ``Distributor`` (SQLite, a fake telephony,
no Asterisk), through ``acd.contract.AgentDesk`` only. The real one is the truth: where the
fake disagreed, the fake was fixed, so a web test written against the fake means what it
says about the product.

Each world gives one agent permitted on one line (an inbound campaign's hotline, 30 s of
wrap-up, so a hang-up goes to wrap-up), a second line it may not serve, and two global
enquiry categories: "Mood" (one choice) and "Product" (several)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from fakes.desk import FakeDesk
from sqlalchemy import select
from support import polling
from support.clocks import WallClock
from support.fakes import FakeTelephony

from asterisk_cube.acd import contract as c
from asterisk_cube.acd.distributor import Clock, Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
WRAP_UP = 30


@dataclass
class World:
    """One implementation of the desk and how a scenario drives the world around it."""

    name: str
    desk: c.AgentDesk
    agent: int
    line: int
    other_line: int
    topics: dict[str, int]
    clock: WallClock
    arrive: Any  # (caller) -> call id
    caller_leaves: Any  # (call id) -> None
    close: Any
    answer: Any  # (call id) -> None: the agent's phone answers (worlds made to ring)
    flush: Any = None  # the real one: write what its journal queued (a hotline's new contact)

    async def settle(self) -> None:
        await polling.settle(10)  # the real one rings the phone in a task
        if self.flush is not None:
            self.flush()
            await polling.settle(10)

    async def view(self) -> c.AgentView:
        return await self.desk.view(self.agent)


class RingingTelephony(FakeTelephony):
    """The agent's phone rings until the test answers it."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = asyncio.Event()

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        await self.answered.wait()
        return await super().connect_agent(call_id, channel_id, endpoint, tone)


def fake_world(ringing: bool = False) -> World:
    clock = WallClock(START)
    desk = FakeDesk(
        EventHub(),
        clock=clock,
        offer_timeout=20,
        wrap_up_seconds=WRAP_UP,
        auto_answer=not ringing,
    )
    desk.add_line(1, "300", "Hotline", kind="new_customer", campaign="Hot")
    desk.add_line(2, "400", "Other")
    desk.add_agent(7, "ann", "Ann", lines=[1])
    mood = desk.add_category("Mood", ["Happy", "Sad"])
    product = desk.add_category("Product", ["A", "B"], multi=True)
    topics = {t.name: t.topic_id for cat in (mood, product) for t in cat.topics}

    async def close() -> None:
        pass

    return World(
        "fake",
        desk,
        7,
        1,
        2,
        topics,
        clock,
        lambda caller: desk.incoming_call(1, caller),
        desk.caller_hangs_up,
        close,
        desk.answer,
    )


def real_world(tmp_path, ringing: bool = False) -> World:
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_campaign(s, "Hot", direction="inbound", wrap_up=WRAP_UP)
        p.add_line(s, "300", "Hotline", campaign="Hot")
        p.add_line(s, "400", "Other")
        p.add_agent(s, "ann", "Ann", endpoint="PJSIP/ann", lines=["300"])
        p.add_category(s, "Mood")
        p.add_topics(s, "Mood", ["Happy", "Sad"])
        p.add_category(s, "Product", multi=True)
        p.add_topics(s, "Product", ["A", "B"])
        agent = s.scalar(select(m.Agent.id).where(m.Agent.username == "ann"))
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
        topics = {t.name: t.id for t in s.scalars(select(m.EnquiryTopic))}
    clock = WallClock(START)
    tel = RingingTelephony() if ringing else FakeTelephony()
    d = Distributor(sessions, EventHub(), tel, Clock(now=clock))
    d.load()
    channels: dict[int, str] = {}

    def arrive(caller: str) -> int:
        channel = f"ch-{len(channels) + 1}"
        call_id = d.call_arrived(channel, lines["300"], caller)
        channels[call_id] = channel
        return call_id

    return World(
        "real",
        d,
        agent,
        lines["300"],
        lines["400"],
        topics,
        clock,
        arrive,
        lambda call_id: d.caller_left(channels[call_id]),
        d.close,
        lambda call_id: tel.answered.set() if isinstance(tel, RingingTelephony) else None,
        d.journal.flush,
    )


@pytest.fixture(params=["fake", "real"])
async def w(request, tmp_path):
    world = fake_world() if request.param == "fake" else real_world(tmp_path)
    yield world
    await world.close()


@pytest.fixture(params=["fake", "real"])
async def ringing(request, tmp_path):
    """A world whose agent phone rings until ``answer``."""
    world = fake_world(True) if request.param == "fake" else real_world(tmp_path, True)
    yield world
    await world.close()


async def refused(world: World, reason: str, action) -> None:
    """``action`` is refused with ``reason`` and the agent's view is what it was."""
    before = await world.view()
    with pytest.raises(c.Refused) as exc:
        await action
    assert exc.value.reason == reason, f"{world.name}: {exc.value.reason}: {exc.value.message}"
    assert await world.view() == before, world.name


async def working(w: World) -> None:
    await w.desk.login(w.agent)
    await w.desk.choose_lines(w.agent, [w.line])
    await w.desk.ready(w.agent)


async def on_a_call(w: World) -> int:
    await working(w)
    call_id = w.arrive("+4791000001")
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    return call_id


async def in_wrap_up(w: World) -> int:
    call_id = await on_a_call(w)
    await w.desk.hangup(w.agent, call_id)
    await w.settle()
    return call_id


# ------------------------------------------------------------------ login and lines


async def test_login_starts_paused_and_a_second_login_changes_nothing(w):
    assert (await w.view()).state == "logged_out"
    await w.desk.login(w.agent)
    view = await w.view()
    assert (view.state, view.pause_reason) == ("paused", "login")
    await w.desk.login(w.agent)  # already working: nothing happens, nothing refused
    assert await w.view() == view


async def test_logout_ends_work_and_a_second_logout_changes_nothing(w):
    await working(w)
    await w.desk.logout(w.agent)
    view = await w.view()
    assert view.state == "logged_out"
    await w.desk.logout(w.agent)
    assert await w.view() == view


async def test_lines_the_agent_may_not_serve_are_refused(w):
    await w.desk.login(w.agent)
    await refused(w, c.NOT_PERMITTED, w.desk.choose_lines(w.agent, [w.line, w.other_line]))
    await w.desk.choose_lines(w.agent, [w.line])
    view = await w.view()
    assert [(ln.line_id, ln.chosen) for ln in view.lines] == [(w.line, True)]


async def test_ready_from_logged_out_starts_work_ready(w):
    await w.desk.choose_lines(w.agent, [w.line])
    await w.desk.ready(w.agent)
    assert (await w.view()).state == "ready"


async def test_ready_twice_is_refused(w):
    await working(w)
    await refused(w, c.ILLEGAL_STATE, w.desk.ready(w.agent))


# ------------------------------------------------------------------ offers and calls


async def test_a_call_is_offered_accepted_and_connected(w):
    await working(w)
    call_id = w.arrive("+4791000001")
    view = await w.view()
    assert view.state == "offered"
    assert (view.offer.call_id, view.offer.caller, view.offer.line) == (
        call_id,
        "+4791000001",
        "Hotline",
    )
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    view = await w.view()
    assert view.state == "busy" and view.offer is None
    assert (view.call.call_id, view.call.state) == (call_id, "connected")
    assert view.call.answered_at is not None


async def test_declined_call_waits_again_and_the_agent_is_ready(w):
    await working(w)
    call_id = w.arrive("+4791000001")
    await w.desk.decline(w.agent, call_id)
    view = await w.view()
    assert view.state == "ready" and view.offer is None and view.call is None
    assert [ln.waiting for ln in view.lines] == [1]


async def test_offer_answers_are_refused_for_a_call_not_offered(w):
    await working(w)
    await refused(w, c.NOT_FOUND, w.desk.accept(w.agent, 999_999))
    await refused(w, c.NOT_FOUND, w.desk.decline(w.agent, 999_999))
    call_id = w.arrive("+4791000001")
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    await refused(w, c.NOT_FOUND, w.desk.accept(w.agent, call_id))  # no longer offered


async def test_hangup_ends_the_call_into_wrap_up(w):
    call_id = await in_wrap_up(w)
    view = await w.view()
    assert view.state == "wrap_up"
    assert view.wrap_up_until == w.clock() + dt.timedelta(seconds=WRAP_UP)
    assert (view.call.call_id, view.call.state) == (call_id, "ended")
    await refused(w, c.NOT_FOUND, w.desk.hangup(w.agent, call_id))  # over: not yours to end


async def test_hangup_is_refused_while_the_phone_still_rings(ringing):
    w = ringing
    await working(w)
    call_id = w.arrive("+4791000001")
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    view = await w.view()
    assert view.state == "busy" and (view.call.call_id, view.call.state) == (call_id, "connecting")
    await refused(w, c.ILLEGAL_STATE, w.desk.hangup(w.agent, call_id))
    w.answer(call_id)
    await w.settle()
    assert (await w.view()).call.state == "connected"
    await w.desk.hangup(w.agent, call_id)
    assert (await w.view()).state == "wrap_up"


async def test_ready_without_lines_is_ready_and_offered_nothing(w):
    await w.desk.login(w.agent)
    await w.desk.ready(w.agent)
    w.arrive("+4791000001")
    view = await w.view()
    assert view.state == "ready" and view.offer is None


async def test_hangup_of_a_call_not_yours_is_refused(w):
    await on_a_call(w)
    await refused(w, c.NOT_FOUND, w.desk.hangup(w.agent, 999_999))


async def test_the_caller_hanging_up_ends_the_call_into_wrap_up(w):
    call_id = await on_a_call(w)
    w.caller_leaves(call_id)
    await w.settle()
    view = await w.view()
    assert view.state == "wrap_up" and view.call.state == "ended"


async def test_a_caller_leaving_the_queue_is_a_missed_call(w):
    await w.desk.login(w.agent)
    await w.desk.choose_lines(w.agent, [w.line])
    call_id = w.arrive("+4791000002")
    w.caller_leaves(call_id)
    await w.settle()
    view = await w.view()
    assert [(x.caller, x.line) for x in view.missed] == [("+4791000002", "Hotline")]


async def test_close_call_only_once_it_is_over(w):
    call_id = await on_a_call(w)
    await refused(w, c.ILLEGAL_STATE, w.desk.close_call(w.agent, call_id))
    await w.desk.hangup(w.agent, call_id)
    await w.settle()
    await w.desk.close_call(w.agent, call_id)
    assert (await w.view()).call is None


# ------------------------------------------------------------------ wrap-up


async def test_finish_wrap_up_makes_the_agent_ready(w):
    await in_wrap_up(w)
    await w.desk.finish_wrap_up(w.agent)
    view = await w.view()
    assert view.state == "ready" and view.wrap_up_until is None


async def test_ready_in_wrap_up_finishes_it(w):
    await in_wrap_up(w)
    await w.desk.ready(w.agent)
    assert (await w.view()).state == "ready"


async def test_finish_wrap_up_outside_wrap_up_is_refused(w):
    await w.desk.login(w.agent)
    await refused(w, c.ILLEGAL_STATE, w.desk.finish_wrap_up(w.agent))
    await w.desk.choose_lines(w.agent, [w.line])
    await w.desk.ready(w.agent)
    await refused(w, c.ILLEGAL_STATE, w.desk.finish_wrap_up(w.agent))


async def test_extend_wrap_up_adds_seconds(w):
    await in_wrap_up(w)
    until = (await w.view()).wrap_up_until
    await w.desk.extend_wrap_up(w.agent, 60)
    assert (await w.view()).wrap_up_until == until + dt.timedelta(seconds=60)
    await w.desk.extend_wrap_up(w.agent, 3600)  # up to an hour at a time
    assert (await w.view()).wrap_up_until == until + dt.timedelta(seconds=3660)


async def test_extend_wrap_up_refuses_bad_seconds_and_outside_wrap_up(w):
    await working(w)
    await refused(w, c.ILLEGAL_STATE, w.desk.extend_wrap_up(w.agent, 60))
    await refused(w, c.INVALID, w.desk.extend_wrap_up(w.agent, 0))  # the seconds first
    await w.desk.pause(w.agent, "lunch")
    await w.desk.ready(w.agent)
    call_id = w.arrive("+4791000001")
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    await w.desk.hangup(w.agent, call_id)
    await w.settle()
    for seconds in (0, -5, 3601):
        await refused(w, c.INVALID, w.desk.extend_wrap_up(w.agent, seconds))


# ------------------------------------------------------------------ pauses


async def test_pause_now_while_ready_and_back(w):
    await working(w)
    await w.desk.pause(w.agent, "lunch")
    view = await w.view()
    assert (view.state, view.pause_reason, view.pause_requested) == ("paused", "lunch", None)
    await w.desk.ready(w.agent)
    assert (await w.view()).state == "ready"


async def test_pause_during_a_call_comes_after_it_and_can_be_cancelled(w):
    await on_a_call(w)
    await w.desk.pause(w.agent, "break")
    view = await w.view()
    assert (view.state, view.pause_requested) == ("busy", "break")
    await w.desk.cancel_pause(w.agent)
    assert (await w.view()).pause_requested is None
    await refused(w, c.ILLEGAL_STATE, w.desk.cancel_pause(w.agent))


async def test_a_requested_pause_starts_when_wrap_up_ends(w):
    await in_wrap_up(w)
    await w.desk.pause(w.agent, "break")
    assert (await w.view()).pause_requested == "break"
    await w.desk.finish_wrap_up(w.agent)
    view = await w.view()
    assert (view.state, view.pause_reason, view.pause_requested) == ("paused", "break", None)


async def test_pause_refusals(w):
    await refused(w, c.INVALID, w.desk.pause(w.agent, "no-such-reason"))
    await refused(w, c.INVALID, w.desk.pause(w.agent, "no_answer"))  # the system's own
    await refused(w, c.ILLEGAL_STATE, w.desk.pause(w.agent, "lunch"))  # not working
    await working(w)
    await refused(w, c.ILLEGAL_STATE, w.desk.cancel_pause(w.agent))  # nothing requested
    w.arrive("+4791000001")
    await refused(w, c.ILLEGAL_STATE, w.desk.pause(w.agent, "lunch"))  # an offer pending


async def test_logout_is_refused_with_an_offer_or_a_call(w):
    await working(w)
    call_id = w.arrive("+4791000001")
    await refused(w, c.ILLEGAL_STATE, w.desk.logout(w.agent))
    await w.desk.accept(w.agent, call_id)
    await w.settle()
    await refused(w, c.ILLEGAL_STATE, w.desk.logout(w.agent))


# ------------------------------------------------------------------ enquiry


async def test_enquiry_is_registered_on_the_call(w):
    call_id = await on_a_call(w)
    view = await w.view()
    assert [(cat.name, cat.multi) for cat in view.call.categories] == [
        ("Mood", False),
        ("Product", True),
    ]
    assert view.call.registered is False
    await w.desk.register_enquiry(w.agent, call_id, [w.topics["Happy"], w.topics["A"]], "ok")
    assert (await w.view()).call.registered is True


async def test_enquiry_refusals(w):
    call_id = await on_a_call(w)
    t = w.topics
    await refused(w, c.INVALID, w.desk.register_enquiry(w.agent, call_id, [], ""))
    await refused(w, c.INVALID, w.desk.register_enquiry(w.agent, call_id, [999_999], ""))
    both_moods = [t["Happy"], t["Sad"]]
    await refused(w, c.INVALID, w.desk.register_enquiry(w.agent, call_id, both_moods, ""))
    await refused(w, c.NOT_FOUND, w.desk.register_enquiry(w.agent, 999_999, [t["A"]], ""))
    await w.desk.register_enquiry(w.agent, call_id, [t["A"], t["B"]], "")  # multi: both


# ------------------------------------------------------------------ not found


async def test_an_unknown_agent_is_not_found(w):
    with pytest.raises(c.Refused) as exc:
        await w.desk.view(999_999)
    assert exc.value.reason == c.NOT_FOUND
    with pytest.raises(c.Refused) as exc:
        await w.desk.login(999_999)
    assert exc.value.reason == c.NOT_FOUND
