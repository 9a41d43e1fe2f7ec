"""The outbound dialer's runtime on the real sandbox Asterisk, with SIPp customers and
agents: the ``cube`` and ``customers`` fixtures and the helpers of the dialer e2e tests
(tests/integration/test_dialer_e2e*.py and the tests built on them).

Customers are one SIPp UAS (tests/sipp/uas_customer.xml) behind the carrier trunk; how each
one behaves is written in its number's last seven digits B RR TT SS: B=2 never answers,
3 busy, 4 unavailable after RR x 100 ms, otherwise it answers after RR x 100 ms and hangs up
after TT x 100 ms. Agent phones are SIPp phones that answer at once (auto-answer) unless a
test says otherwise, and never hang up themselves.

The dialer's timings come from the settings (``ASTERISK_CUBE_DIALER_*``), as in ``serve``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import logging
import random
import re
from collections import defaultdict
from dataclasses import dataclass

import pytest
from sandbox_fixtures import leftovers
from sippkit import SCENARIOS, Sipp, off_the_loop, phone
from sqlalchemy import select
from support import polling

from asterisk_cube import dialplan as dp
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.logs import KeyValueFormatter
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime

CUSTOMERS = SCENARIOS / "uas_customer.xml"
# Contacts ring at most this long (real campaigns: 20-30 s). Customers who answer do so
# within 1.5 s: the 2.5 s left is margin for a busy machine (SIPp, Asterisk and the loop
# late by a second or two), where 2 s made "answered after 1.5 s" a no-answer now and then.
RING_TIMEOUT = 4.0
# Preview and callbacks: an agent's phone rings at most this long. The SIPp phones answer
# at once; 5 s leaves a busy machine room (2 s let the callback agent "not answer" under load).
AGENT_RING_TIMEOUT = 5.0
#: Tests about what happens after a customer answered: a ring timeout no load can reach.
SLOW_RING = {"ring_timeout": "15"}
CONTACTS = {"Power": 200, "Predictive": 200, "Preview": 200}  # issue 6: a few hundred each
#: the predictive list opens with this many customers who all answer: the first burst a
#: pacer trusting its generic prior (20 % answer, after ~10 s) would overshoot
HOT_START = 40
# SIPp control and media ports inside base..base+999, clear of the sandbox's own ports
# (docs/sandbox.md): SIPp's defaults (+2600, +3400) and anything above +1999 reach into the
# phones and RTP range of an instance 2000 ports up, so parallel runs would collide.
CUSTOMERS_CONTROL, CUSTOMERS_MEDIA = 300, 400  # media binds +400 and +402


def agent_control(n: int) -> int:
    return 300 + n  # agents 1..40: +301..+340


def agent_media(n: int) -> int:
    return 420 + 4 * (n - 1)  # agents 1..32: +420..+546 (each binds mp and mp+2)


RETRY = dt.timedelta(minutes=1)  # the smallest retry interval a campaign can have
CAP = 0.03


def number(behaviour: int, ring: int = 0, talk: int = 0, serial: int = 0) -> str:
    return f"+479{behaviour}{ring:02d}{talk:02d}{serial % 100:02d}"


def answering_customer(rng: random.Random, serial: int) -> tuple[str, str]:
    # answers within 1.5 s, talks 3-4 s: longer than the abandon decision (2 s) plus the
    # day test's message
    return number(1, rng.randint(1, 15), rng.randint(30, 40), serial), "answers"


def random_customer(rng: random.Random, serial: int) -> tuple[str, str]:
    """(phone, kind); kind: answers | never | busy | unavailable."""
    x = rng.random()
    if x < 0.45:
        return answering_customer(rng, serial)
    if x < 0.75:
        return number(2, 0, 0, serial), "never"
    if x < 0.85:
        return number(3, 0, 0, serial), "busy"
    return number(4, rng.randint(5, 15), 0, serial), "unavailable"


until = functools.partial(polling.until, timeout=30.0, every=0.1)


def _asterisk_left(sandbox) -> tuple[list[str], list[str], str] | None:
    """None once Asterisk has no channel (``GET /channels``, ``core show channels``) and
    no call bridge (``GET /bridges``; the reused holding bridges aside); else what is left."""
    channels, bridges = leftovers(sandbox)
    count = sandbox.rx("core show channels count")
    if not channels and not bridges and re.search(r"^0 active channels", count, re.M):
        return None
    return channels, bridges, count.strip()


async def assert_no_call_left(sandbox, what: str) -> None:
    """Every dialer call's bridge destroyed and every leg gone (issue #19 counted a
    second ``DELETE /bridges``; an early-made bridge must not outlive its call)."""
    try:
        await until(
            lambda: asyncio.to_thread(lambda: _asterisk_left(sandbox) is None),
            timeout=15,
            what=what,
        )
    except AssertionError:
        left = await asyncio.to_thread(_asterisk_left, sandbox)
        raise AssertionError(f"{what}: still in Asterisk: {left}") from None


@dataclass
class Cube:
    settings: object
    sessions: object
    ring_timeouts: tuple[float, float]
    runtime: object = None
    task: object = None

    @property
    def desk(self):
        return self.runtime.state.extras["distributor"]

    @property
    def dialer(self):
        return self.runtime.state.extras["dialer"]

    def tx(self):
        return transaction(self.sessions)

    async def start(self, **dialer_settings):
        with self.tx() as s:
            text = dp.render(s, self.settings)
        await asyncio.to_thread(dp.install, text, self.settings)
        self.runtime = build_runtime(self.settings, install_signal_handlers=False)
        self.task = asyncio.create_task(self.runtime.run())

        def ready():
            sup = self.runtime.state.supervisor
            return sup is not None and sup.connected and "dialer" in self.runtime.state.extras

        await until(ready, what="ARI connected")
        # from the [dialer] settings (the fixture's environment), as in serve
        timeouts = (self.dialer.ring_timeout, self.dialer.agent_ring_timeout)
        assert timeouts == self.ring_timeouts
        for key, value in dialer_settings.items():
            setattr(self.dialer, key, value)

    async def stop(self):
        self.runtime.request_stop("test")
        assert await asyncio.wait_for(self.task, 20) == 0

    def running(self, *names, status="running"):
        with self.tx() as s:
            for name in names:
                p.set_campaign_status(s, name, status)
        self.dialer.refresh()


@pytest.fixture
async def cube(sandbox, tmp_path, request):
    """The product's runtime on the sandbox; ``[dialer]`` settings from the environment
    (more of them with ``@pytest.mark.parametrize("cube", [{key: value}], indirect=True)``)."""
    dialer = {
        "ring_timeout": str(RING_TIMEOUT),
        "agent_ring_timeout": str(AGENT_RING_TIMEOUT),
        **getattr(request, "param", {}),
    }
    env = {
        **sandbox.env(),
        "ASTERISK_CUBE_DATA_DIR": str(tmp_path),
        # the loop watchdog reports a stall a quarter of the connect window long
        "ASTERISK_CUBE_METRICS_LOOP_STALL_MS": "250",
        **{f"ASTERISK_CUBE_DIALER_{key.upper()}": value for key, value in dialer.items()},
    }
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    timeouts = (float(dialer["ring_timeout"]), float(dialer["agent_ring_timeout"]))
    cube = Cube(settings, make_sessionmaker(make_engine(settings.database_url)), timeouts)
    # the product's own log of the run, for when something fails: tmp_path/cube.log
    handler = logging.FileHandler(tmp_path / "cube.log")
    handler.setFormatter(KeyValueFormatter())
    ours = logging.getLogger("asterisk_cube")
    ours.addHandler(handler)
    ours.setLevel(logging.DEBUG)
    logging.getLogger("asyncari").setLevel(logging.ERROR)  # "Event not recognized: Dial..."
    yield cube
    try:
        if cube.task is not None and not cube.task.done():
            await cube.stop()
    finally:
        ours.removeHandler(handler)
        handler.close()


@pytest.fixture
def customers(sandbox, tmp_path):
    with Sipp(
        CUSTOMERS,
        sandbox.customer_ports[0],
        tmp_path / "customers",
        remote=f"127.0.0.1:{sandbox.sip_port}",
        trace_messages=False,
        trace_logs=True,  # each call's own account: customer_drops()
        control_port=sandbox.base_port + CUSTOMERS_CONTROL,
        media_port=sandbox.base_port + CUSTOMERS_MEDIA,
    ) as uas:
        yield uas


def agent_phones(sandbox, tmp_path, numbers, **answer_ms):
    """SIPp phones for agents ``numbers`` (``async with``: started and stopped off the
    loop, which runs the product); ``answer_ms={"13": 60000}`` slows one down."""
    return off_the_loop(
        *(
            phone(
                sandbox,
                sandbox.agent_port(n),
                tmp_path / f"agent{n:02d}",
                answer_ms=answer_ms.get(str(n), 0),
                trace_messages=False,
                control_port=sandbox.base_port + agent_control(n),
                media_port=sandbox.base_port + agent_media(n),
            )
            for n in numbers
        )
    )


def add_agents(s, numbers, skill):
    return [
        p.add_agent(s, f"agent{n:02d}", endpoint=f"PJSIP/agent{n:02d}", skills=[skill]).id
        for n in numbers
    ]


def add_contacts(s, campaign_id, phones):
    rows = [
        m.Contact(campaign_id=campaign_id, phone=ph, name=f"contact {i}")
        for i, ph in enumerate(phones)
    ]
    s.add_all(rows)
    s.flush()
    return [r.id for r in rows]


async def ready(desk, agent_ids):
    for agent_id in agent_ids:
        await desk.login(agent_id)
        await desk.ready(agent_id)


def open_contacts(cube, campaign_id):
    """Contacts of the campaign still to be dialed (now or later) or being dialed."""
    with cube.tx() as s:
        return s.scalars(
            select(m.Contact.id).where(
                m.Contact.campaign_id == campaign_id,
                m.Contact.status.in_(
                    (
                        m.ContactStatus.NEW,
                        m.ContactStatus.DIALING,
                        m.ContactStatus.NOT_ANSWERED,
                        m.ContactStatus.CALLBACK,
                    )
                ),
            )
        ).all()


async def all_done(cube, campaign_id):
    """No contact of the campaign open, read in a worker thread (this loop runs the
    product: a query polled on it holds every call's events meanwhile)."""
    return not await asyncio.to_thread(open_contacts, cube, campaign_id)


def attempts_by_contact(s, campaign_id):
    out = defaultdict(list)
    for a in s.scalars(
        select(m.ContactAttempt)
        .where(m.ContactAttempt.campaign_id == campaign_id)
        .order_by(m.ContactAttempt.id)
    ):
        out[a.contact_id].append(a)
    return out


def check_campaign(s, campaign_id, kinds, max_attempts=2):
    """Every contact in a correct end state; attempts and the retry interval held.
    Returns (answered by a person, abandoned)."""
    by_contact = attempts_by_contact(s, campaign_id)
    answered = abandoned = 0
    for contact_id, kind in kinds.items():
        row = s.get(m.Contact, contact_id)
        tries = by_contact[contact_id]
        results = [a.result for a in tries]
        assert len(tries) == row.attempts <= max_attempts, (contact_id, kind, results)
        for first, second in itertools.pairwise(tries):
            assert second.started_at - first.ended_at >= RETRY, (contact_id, kind)
        answered += sum(r in (m.CallState.ENDED, m.CallState.ABANDONED) for r in results)
        abandoned += results.count(m.CallState.ABANDONED)
        if kind == "answers":
            if results[-1] == m.CallState.ENDED:
                assert row.status == m.ContactStatus.DONE, (contact_id, results)
                assert set(results[:-1]) <= {m.CallState.ABANDONED}
            else:
                assert results == [m.CallState.ABANDONED] * max_attempts
                assert row.status == m.ContactStatus.EXHAUSTED
        else:
            expected = m.CallState.FAILED if kind == "busy" else m.CallState.NO_ANSWER
            assert results == [expected] * max_attempts, (contact_id, kind, results)
            assert row.status == m.ContactStatus.EXHAUSTED, (contact_id, kind)
    return answered, abandoned


def check_no_agent_on_two_calls(s):
    legs = defaultdict(list)
    for leg in s.scalars(
        select(m.CallLeg).where(
            m.CallLeg.role == m.LegRole.AGENT, m.CallLeg.answered_at.is_not(None)
        )
    ):
        legs[leg.agent_id].append((leg.answered_at, leg.ended_at or dt.datetime.max))
    for agent_id, spans in legs.items():
        spans.sort()
        for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
            assert b0 >= a1, f"agent {agent_id} bridged to two calls at once"
    return sum(len(v) for v in legs.values())


def customer_drops(trace_dir, phones):
    """Answered and dropped calls as the SIPp customers lived them, from their own log
    (tests/sipp/uas_customer.xml, -trace_logs), for the customers in ``phones``:
    (answered, dropped). Dropped = answered, then hung up by Asterisk before the customer
    hung up (every customer here hangs up by itself 3-4 s after answering, and agent
    phones never hang up: only a call no agent took is ended by us first)."""
    events: dict[str, dict[str, str]] = defaultdict(dict)
    path = trace_dir / "logs.log"
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("answered", "hungup_by_them", "hungup_by_me"):
            number = re.search(r"sip:(\+?[0-9]+)@", line)
            if number and number.group(1).lstrip("+") in phones:
                events[parts[1]].setdefault(parts[0], number.group(1))
    answered = [e for e in events.values() if "answered" in e]
    dropped = [e for e in answered if "hungup_by_them" in e and "hungup_by_me" not in e]
    return len(answered), len(dropped)


def abandoned_without_message(s):
    """(abandoned calls, those that did not hear the message although they were there)."""
    rows = s.scalars(select(m.Call).where(m.Call.state == m.CallState.ABANDONED)).all()
    bad = [
        (call.id, call.end_reason)
        for call in rows
        # "contact_hangup_waiting": hung up before 2 s, nothing could be played
        if call.end_reason != "contact_hangup_waiting"
        and (not call.end_reason.startswith("abandoned_") or call.end_reason.endswith("no_message"))
    ]
    return len(rows), bad


async def _on_call(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.call and view.call.state == "connected" else None


async def _paused(desk, agent_id):
    view = await desk.view(agent_id)
    return view.state == "paused" and view.pause_reason == "no_answer"


async def _ended(cube, contact_id):
    return await asyncio.to_thread(_ended_at, cube, contact_id)  # off the product's loop


def _ended_at(cube, contact_id):
    with cube.tx() as s:
        return s.scalar(
            select(m.Call.ended_at).where(
                m.Call.contact_id == contact_id, m.Call.ended_at.is_not(None)
            )
        )


async def _has_status(cube, contact_id, status):
    return await asyncio.to_thread(_contact_status, cube, contact_id) == status


def _contact_status(cube, contact_id):
    with cube.tx() as s:
        return s.get(m.Contact, contact_id).status
