"""The dialer's unit tests' world: a fake telephony (``FakeTelephony``), the dialer's
clock on looptime's fake time, a database with four agents and a running campaign
(``make``), and the waits they share (tests/unit/test_dialer_service*.py)."""

import asyncio
import datetime as dt
import itertools

from sqlalchemy import select

from asterisk_cube.acd.distributor import Clock as DistributorClock
from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.outbound import DialResult
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
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

    def leg_up(self, channel_id):  # as the distributor's telephony
        return False  # a hung-up leg leaves at once here


class Clock:
    """The dialer's wall clock on the event loop's (fake) time, plus ``offset``."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.base = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.loop.time())
        self.offset = dt.timedelta(0)

    def __call__(self):
        return self.base + dt.timedelta(seconds=self.loop.time()) + self.offset


def dialer_world(tmp_path):
    """Each test module's ``world`` fixture: a fresh database with four agents."""
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
