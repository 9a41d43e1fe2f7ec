"""Reproductions of races found by bench/inbound_bench (load part: 5 calls/s, callers hang
up 8-15 s after the answer, so some hang up while the accepting agent's phone rings).

Each was first committed as a strict xfail reproduction, then fixed; now regression tests.
"""

import asyncio
import datetime as dt

import pytest
from dbkit import db
from fakes.ari import FakeSupervisor
from sqlalchemy import select
from support.polling import settle

from asterisk_cube.acd.distributor import Clock, Distributor
from asterisk_cube.ari.inbound import InboundApp
from asterisk_cube.config import Settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p


class GatedTelephony:
    """connect_agent waits until the test says how the agent's phone answered."""

    def __init__(self):
        self.rings: dict[int, asyncio.Future] = {}
        self.hung_up: list[str] = []

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        self.rings[call_id] = asyncio.get_running_loop().create_future()
        return await self.rings[call_id]

    async def hangup(self, channel_id):
        self.hung_up.append(channel_id)

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here

    async def release(self, call_id, channels):
        self.hung_up.extend(channels)

    async def callback(self, call_id, endpoint, number, caller_id):
        return None


class FixedClock(Clock):
    def __init__(self):
        t = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
        super().__init__(now=lambda: t)


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_line(s, "100", "Support", priority=1)
        p.add_agent(s, "ann", endpoint="PJSIP/ann", lines=["100"])
        ann = s.scalar(select(m.Agent)).id
        line = s.scalar(select(m.Line)).id
    return sessions, ann, line


async def test_stale_connect_after_caller_left_does_not_touch_the_agents_next_call(world):
    sessions, ann, line = world
    tel = GatedTelephony()
    d = Distributor(sessions, EventHub(), tel, FixedClock())
    d.load()
    await d.login(ann)
    await d.choose_lines(ann, [line])
    await d.ready(ann)

    a = d.call_arrived("ch-a", line, "91000001")
    await d.accept(ann, a)
    await settle()  # ann's phone rings for A
    d.caller_left("ch-a")  # A hangs up meanwhile: missed call, ann ready again
    b = d.call_arrived("ch-b", line, "91000002")  # offered to ann at once
    await d.accept(ann, b)
    await settle()
    tel.rings[a].set_result(None)  # the ring for A ends (the adapter hung it up)
    await settle()

    view = await d.view(ann)
    with db(d) as s:
        a_state = s.get(m.Call, a).state
    # Was: ann paused "no_answer" while B rang her, and A's row back to WAITING.
    assert (view.state, view.pause_reason) == ("busy", None)
    assert a_state == m.CallState.MISSED

    tel.rings[b].set_result("agent-b")  # ann answers B
    await settle()
    # Was: Refused("cannot call_ended now: not_on_a_call") escapes caller_left; B's row stays
    # CONNECTED and the ARI adapter never hangs up ann's channel (it leaks in Asterisk).
    d.caller_left("ch-b")
    with db(d) as s:
        assert s.get(m.Call, b).state == m.CallState.ENDED


class FakeAri:
    """Enough of asyncari's client for InboundApp.connect_agent: the agent answers at once;
    the caller's channel is gone by the time it is bridged."""

    def __init__(self, answer=True):
        self.app = None
        self.answer = answer
        self.originated: list[str] = []
        self.hung_up: list[str] = []
        outer = self

        class Channels:
            async def originate(self, channelId, appArgs, **kw):
                outer.originated.append(channelId)
                if not outer.answer:
                    return
                event = {
                    "type": "StasisStart",
                    "args": appArgs.split(","),
                    "channel": {"id": channelId},
                }
                asyncio.get_running_loop().call_soon(
                    lambda: asyncio.ensure_future(outer.app.on_event(event, outer))
                )

            async def hangup(self, channelId):
                outer.hung_up.append(channelId)

        class Bridges:
            async def createWithId(self, **kw):
                pass

            async def removeChannel(self, **kw):
                raise LookupError("Channel not found")

            async def addChannel(self, **kw):
                raise LookupError("Channel not found")  # asyncari raises OperationError

        self.channels = Channels()
        self.bridges = Bridges()


async def test_answered_agent_channel_is_hung_up_when_the_caller_is_gone(world):
    sessions, _ann, _line = world
    ari = FakeAri()
    d = Distributor(sessions, EventHub(), None, FixedClock())
    app = InboundApp(Settings(), FakeSupervisor(ari), d, ring_timeout=2)
    ari.app = app
    with pytest.raises(LookupError):
        await app.connect_agent(1, "caller-gone", "PJSIP/ann", tone=False)
    # Was: nothing hung up the agent's answered channel; it stays up in the Stasis app
    # (seen as leftover channels in Asterisk after the load bench).
    assert ari.hung_up, "the agent's answered channel was left up"


async def test_ringing_agent_channel_is_known_so_the_caller_leaving_can_stop_it(world):
    sessions, ann, line = world
    ari = FakeAri(answer=False)  # the agent's phone keeps ringing
    d = Distributor(sessions, EventHub(), None, FixedClock())
    app = InboundApp(Settings(), FakeSupervisor(ari), d, ring_timeout=2)
    d.telephony = app
    ari.app = app
    d.load()
    await d.login(ann)
    await d.choose_lines(ann, [line])
    await d.ready(ann)
    call = d.call_arrived("caller", line, "91000001")
    await d.accept(ann, call)
    await settle()
    (ringing,) = ari.originated
    assert d.calls[call].legs() == ["caller", ringing]  # the distributor knows the leg
    # The caller hangs up while the agent's phone rings: the ringing leg is hung up too.
    await app.on_event({"type": "StasisEnd", "channel": {"id": "caller"}}, ari)
    await settle()
    assert ringing in ari.hung_up
    await app.on_event({"type": "ChannelDestroyed", "channel": {"id": ringing}}, ari)
    await settle()
    view = await d.view(ann)
    assert (view.state, view.call) == ("ready", None)
    with db(d) as s:
        assert s.get(m.Call, call).state == m.CallState.MISSED


class AnsweringTelephony(GatedTelephony):
    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        await asyncio.sleep(0)
        return f"agent-{call_id}"


async def test_accepting_the_next_call_with_the_last_card_open_forgets_the_last_call(world):
    sessions, ann, line = world
    d = Distributor(sessions, EventHub(), AnsweringTelephony(), FixedClock())
    d.load()
    await d.login(ann)
    await d.choose_lines(ann, [line])
    await d.ready(ann)
    a = d.call_arrived("ch-a", line, "91000001")
    await d.accept(ann, a)
    await settle()
    d.caller_left("ch-a")  # talk over; no wrap-up on this line: ann is ready, card A open
    b = d.call_arrived("ch-b", line, "91000002")
    await d.accept(ann, b)  # the next offer came at once; ann takes it without closing A
    await settle()
    d.caller_left("ch-b")
    await d.close_call(ann, b)
    assert set(d.calls) == set()  # was {a}: call A stayed in memory for good


class FailingTelephony(GatedTelephony):
    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        raise LookupError("Channel not found")  # the caller left as the agent answered


async def test_bridge_failure_is_not_the_agents_no_answer(world):
    sessions, ann, line = world
    d = Distributor(sessions, EventHub(), FailingTelephony(), FixedClock())
    d.load()
    await d.login(ann)
    await d.choose_lines(ann, [line])
    await d.ready(ann)
    a = d.call_arrived("ch-a", line, "91000001")
    await d.accept(ann, a)
    await settle()
    view = await d.view(ann)
    assert view.pause_reason != "no_answer" and view.state in ("ready", "offered")
    d.caller_left("ch-a")  # the hang-up that explains the failure arrives
    view = await d.view(ann)
    assert (view.state, view.offer) == ("ready", None)
    with db(d) as s:
        assert s.get(m.Call, a).state == m.CallState.MISSED
