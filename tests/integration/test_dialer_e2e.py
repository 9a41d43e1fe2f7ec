"""The outbound dialer on the real sandbox Asterisk, with SIPp customers and agents.

Customers are one SIPp UAS (tests/sipp/uas_customer.xml) behind the carrier trunk; how each
one behaves is written in its number's last seven digits B RR TT SS: B=2 never answers,
3 busy, 4 unavailable after RR x 100 ms, otherwise it answers after RR x 100 ms and hangs up
after TT x 100 ms. Agent phones are SIPp phones that answer at once (auto-answer) unless a
test says otherwise, and never hang up themselves.

``test_a_day_in_every_mode`` runs five campaigns at once (so the one-minute retry interval
and callback reservation are waited for only once): power, predictive and preview with
CONTACTS random customers each (32 agent phones), a power campaign whose calling window
closes after a few seconds, and scheduled callbacks (reserved, then free). The predictive
campaign starts cold, from the pacer's generic prior (customers here answer far sooner and
more often than it assumes); the power campaign is on its second day and learns its first
at start. Measurements are printed (run with -s).

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
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sandbox_fixtures import leftovers
from sippkit import SCENARIOS, Sipp, caller, off_the_loop, phone
from sqlalchemy import func, select
from support import polling

from asterisk_cube import dialplan as dp
from asterisk_cube.config import load_settings
from asterisk_cube.core import contacts as core
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.logs import KeyValueFormatter
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime

pytestmark = pytest.mark.integration

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


async def assert_nothing_left(sandbox, what: str) -> None:
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


class LoopLag:
    """How late the event loop wakes a 50 ms sleeper (a busy loop delays ARI events)."""

    def __init__(self):
        self.lags: list[float] = []
        self.task = None

    def start(self):
        self.task = asyncio.ensure_future(self._run())
        return self

    async def _run(self):
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            self.lags.append(time.monotonic() - t - 0.05)

    def stop(self) -> str:
        self.task.cancel()
        lags = self.lags or [0.0]
        return (
            f"p50 {statistics.median(lags) * 1000:.0f} ms, p99 {pct(lags, 0.99) * 1000:.0f} ms, "
            f"max {max(lags) * 1000:.0f} ms"
        )


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def set_window_closing(cube, campaign_id, seconds, zone="America/New_York"):
    """Today's calling window (campaign zone) ends ``seconds`` from now; returns that in UTC."""
    local = dt.datetime.now(dt.UTC).astimezone(ZoneInfo(zone))
    closes = (local + dt.timedelta(seconds=seconds)).replace(microsecond=0)
    opens = max(local - dt.timedelta(hours=1), local.replace(hour=0, minute=0, second=0))
    with cube.tx() as s:
        s.get(m.Campaign, campaign_id).windows = [
            m.CallingWindow(weekday=opens.weekday(), starts=opens.time(), ends=closes.time())
        ]
    cube.dialer.refresh()
    return closes.astimezone(dt.UTC)


def seed_history(s, campaign_id, agent_ids, rng, days_ago=2, calls=300):
    """A previous day of the campaign, written as the dialer writes it (same customers'
    model): a restarted campaign learns its ring and talk times from these."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    for i in range(calls):
        phone, kind = random_customer(rng, i)
        ring_s, talk_s = int(phone[-6:-4]) / 10, int(phone[-4:-2]) / 10
        contact = m.Contact(
            campaign_id=campaign_id,
            phone=phone,
            status=m.ContactStatus.DONE if kind == "answers" else m.ContactStatus.EXHAUSTED,
            attempts=1,
        )
        s.add(contact)
        s.flush()
        at = start + dt.timedelta(seconds=5 * i)
        claim = records.Claim(contact.id, campaign_id, phone, None, core.PickKind.FRESH, 1)
        call_id = records.open_call(s, claim, "predictive", "yesterday", at)
        records.contact_dialed(s, call_id, f"old-{i}", "PJSIP/carrier", at)
        if kind == "answers":
            answered = at + dt.timedelta(seconds=ring_s + 0.05)
            records.contact_answered(s, call_id, answered)
            records.call_connected(s, call_id, agent_ids[i % len(agent_ids)], answered)
            ended = answered + dt.timedelta(seconds=talk_s)
            records.call_finished(s, call_id, m.CallState.ENDED, "contact_hangup", ended)
        elif kind == "busy":
            ended = at + dt.timedelta(seconds=0.05)
            records.call_finished(s, call_id, m.CallState.FAILED, "busy", ended)
        else:
            ends = RING_TIMEOUT if kind == "never" else ring_s
            ended = at + dt.timedelta(seconds=ends + 0.05)
            records.call_finished(s, call_id, m.CallState.NO_ANSWER, "no_answer", ended)
    return calls


class PacingSpy:
    """Counts the core pacer's decisions by reason, and how far the lines a predictive
    campaign had ringing (or answered and waiting) ever ran ahead of its agents free or
    free within the grace (power never runs ahead of them)."""

    def __init__(self, decide):
        self.decide = decide
        self.reasons: dict[str, int] = defaultdict(int)
        self.ahead = 0

    def __call__(self, state):
        decision = self.decide(state)
        self.reasons[decision.reason] += 1
        if decision.reason == "predictive":
            soon = state.ready_agents + sum(1 for w in state.wrapping if w <= pc.GRACE_SECONDS)
            self.ahead = max(self.ahead, len(state.dialing) + state.waiting_calls - soon)
        return decision


# ~135 s on an idle machine, several minutes on a loaded one (the ini's 300 s is for the rest)
@pytest.mark.timeout(900)
@pytest.mark.parametrize("cube", [{"abandon_message": "sound:beep"}], indirect=True)
async def test_a_day_in_every_mode(cube, sandbox, customers, tmp_path, monkeypatch, request):
    """Every mode with CONTACTS customers. The predictive campaign starts cold, on a list
    whose first HOT_START customers all answer: it paces as power until it has answers of
    its own, then dials ahead, and stays under its cap. The power campaign is on its second
    day: it learns from the first (seed_history) at start. Abandoned contacts hear a short
    message (the [dialer] abandon_message setting) which customers stay on the line for."""
    pacing = PacingSpy(pc.decide)
    monkeypatch.setattr(pc, "decide", pacing)  # the dialer calls pc.decide
    rng = random.Random(2026)
    kinds: dict[str, dict[int, str]] = {}
    with cube.tx() as s:
        common = dict(max_attempts=2, retry_interval=1, wrap_up=1, callback_reservation=1)
        power = p.add_campaign(s, "Power", mode="power", skill="power", **common)
        predictive = p.add_campaign(
            s, "Predictive", mode="predictive", skill="predictive", **common
        )
        preview = p.add_campaign(s, "Preview", mode="preview", skill="preview", **common)
        window = p.add_campaign(
            s, "Window", mode="power", skill="window", timezone="America/New_York", **common
        )
        callbacks = p.add_campaign(s, "Callbacks", mode="power", skill="callbacks", **common)
        ids = {
            "power": add_agents(s, range(1, 10), "power"),
            "predictive": add_agents(s, range(10, 20), "predictive"),
            "preview": add_agents(s, range(20, 30), "preview"),
            "window": add_agents(s, [30], "window"),
            "callbacks": add_agents(s, [31, 32], "callbacks"),
        }
        for camp in (power, predictive, preview):
            hot = HOT_START if camp.name == "Predictive" else 0
            made = [answering_customer(rng, i) for i in range(hot)]
            made += [random_customer(rng, i) for i in range(hot, CONTACTS[camp.name])]
            contact_ids = add_contacts(s, camp.id, [ph for ph, _ in made])
            kinds[camp.name] = dict(zip(contact_ids, [k for _, k in made], strict=True))
        window_contacts = add_contacts(s, window.id, [number(3, 0, 0, i) for i in range(300)])
        cb_contacts = add_contacts(s, callbacks.id, [number(1, 3, 40, 1), number(1, 3, 20, 2)])
        camp_ids = {c.name: c.id for c in (power, predictive, preview, window, callbacks)}
        history = seed_history(s, power.id, ids["power"], random.Random(2025))

    t0 = dt.datetime.now(dt.UTC)
    await cube.start()
    assert cube.dialer.abandon_media == "sound:beep"
    lag = LoopLag().start()
    request.addfinalizer(lambda: print(f"\nevent loop lag (whole day): {lag.stop()}"))
    # serve's loop watchdog (loopwatch.py) runs in this runtime too: a stall of the loop
    # (ours or the product's: they share it) is logged with its stack to cube.log
    watch = cube.runtime.state.extras["loop_watch"]
    request.addfinalizer(lambda: print(f"\nloop watchdog: {watch.summary()}"))
    desk = cube.desk
    cb_a, cb_b = ids["callbacks"]
    lazy = ids["preview"][0]  # agent20: its phone rings but nobody answers
    async with agent_phones(sandbox, tmp_path, range(1, 33), **{"20": 60000}):
        for agent_ids in ids.values():
            await ready(desk, agent_ids)
        # two callbacks for agent31: one due now (it is free: it gets it), one due in
        # 3 s (agent31 will be paused by then: reserved for it for a minute, then agent32)
        with cube.tx() as s:
            rules = load_campaign(s, camp_ids["Callbacks"]).rules
            now = dt.datetime.now(dt.UTC)
            for contact_id, due, comment in (
                (cb_contacts[0], now, "first: wants the blue one"),
                (cb_contacts[1], now + dt.timedelta(seconds=3), "second: after the meeting"),
            ):
                records.apply_outcome(
                    s,
                    contact_id,
                    Outcome.CALLBACK,
                    rules,
                    now,
                    core.Callback(due, cb_a, comment),
                    created_by=cb_a,
                )
        # the window closes 3 s from now, in the campaign's own zone (New York)
        window_closes = set_window_closing(cube, camp_ids["Window"], seconds=3)
        started = time.monotonic()
        cube.running("Power", "Predictive", "Preview", "Window", "Callbacks")

        # callback 1 reaches agent31 with its comment; then agent31 asks for a break
        view = await until(
            lambda: _on_call(desk, cb_a), timeout=60, what="callback delivered to agent31"
        )
        assert view.call.comment == "first: wants the blue one"
        await desk.pause(cb_a, "break")  # after this call and its wrap-up

        # the preview agent who does not answer is paused; its contact goes on
        await until(
            lambda: _paused(desk, lazy), timeout=60, what="preview agent paused (no answer)"
        )

        # wait for every campaign to finish both passes (retries come a minute later)
        for name in ("Power", "Predictive", "Preview"):
            await until(
                lambda n=name: all_done(cube, camp_ids[n]),
                timeout=240,
                what=f"{name} finished",
                every=1.0,
            )
        await until(
            lambda: all_done(cube, camp_ids["Callbacks"]),
            timeout=90,
            what="callbacks finished",
            every=1.0,
        )
        await until(lambda: not cube.dialer.lines, timeout=20, what="all lines over")
        elapsed = time.monotonic() - started
        await assert_nothing_left(sandbox, "the day's calls over")
        snapshot = cube.dialer.snapshot()
        await asyncio.to_thread(customers.stop)  # its log is complete once it has exited
        learned = {
            name: cube.dialer.runs[camp_ids[name]].learning.dials.dials
            for name in ("Power", "Predictive")
        }

    lag_text = lag.stop()
    # the day is over: stop the product before this test's checks read the database on
    # the loop the runtime shares (the watchdog saw them hold it 1 s, all calls over)
    await cube.stop()
    with cube.tx() as s:
        counts = {
            name: records.abandon_counts(s, camp_ids[name], t0 - dt.timedelta(hours=1))
            for name in ("Power", "Predictive", "Preview")
        }
        bridged = check_no_agent_on_two_calls(s)
        abandoned_calls, unheard = abandoned_without_message(s)
        placed = s.scalar(  # today's dialer calls (not the seeded history)
            select(func.count(m.Call.id)).where(
                m.Call.campaign_id.is_not(None), m.Call.started_at >= t0
            )
        )
    delays = cube.dialer.connect_delays  # bounded histograms (dialer/probes.py)
    answer = cube.dialer.agent_answer_delays
    print(f"\n--- dialer day: {elapsed:.0f} s, {bridged} agent legs bridged")
    for name, (abandoned, answered) in counts.items():
        rate = abandoned / answered if answered else 0.0
        print(
            f"{name:>10}: {CONTACTS[name]} contacts, {answered} answered, "
            f"{abandoned} abandoned ({rate:.1%})"
        )
    print(
        f"answered -> agent bridged: p50 ~{delays.quantile(0.5) * 1000:.0f} ms, "
        f"p95 ~{delays.quantile(0.95) * 1000:.0f} ms, max {delays.max * 1000:.0f} ms "
        f"(n={delays.count})"
    )
    waits, bridging = cube.dialer.probes.agent_waits, cube.dialer.probes.bridge_seconds
    print(
        f"  of which: waiting for an agent p95 ~{waits.quantile(0.95) * 1000:.0f} ms, max "
        f"{waits.max * 1000:.0f} ms; bridging (agent answered -> bridged) p95 "
        f"~{bridging.quantile(0.95) * 1000:.0f} ms, mean {bridging.sum / bridging.count * 1000:.1f}"
        f" ms, max {bridging.max * 1000:.0f} ms"
    )
    print(
        f"auto-answer agent leg: p50 ~{answer.quantile(0.5) * 1000:.0f} ms, mean "
        f"{answer.sum / answer.count * 1000:.1f} ms, max {answer.max * 1000:.0f} ms; "
        f"abandoned calls: {abandoned_calls}"
    )
    steps = cube.dialer.step_seconds
    print(
        f"dialer step: p50 ~{steps.quantile(0.5) * 1000:.1f} ms, "
        f"p99 ~{steps.quantile(0.99) * 1000:.1f} ms; event loop lag: {lag_text}"
    )
    db = cube.dialer.db_on_loop
    print(
        f"dialer DB on the event loop: {db.count} transactions for {placed} calls, "
        f"{db.sum:.2f} s in all, p50 ~{db.quantile(0.5) * 1000:.1f} ms, "
        f"p99 ~{db.quantile(0.99) * 1000:.1f} ms, max {db.max * 1000:.1f} ms; by kind: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in cube.dialer.db_on_loop_by.most_common())
    )
    print(f"snapshot: {snapshot}")
    print(
        f"pacing decisions: {dict(pacing.reasons)}; predictive lines ahead of agents free: "
        f"up to {pacing.ahead}"
    )
    with cube.tx() as s:
        report = {}
        for name in ("Power", "Predictive", "Preview"):
            answered, abandoned = check_campaign(s, camp_ids[name], kinds[name])
            rate = abandoned / answered if answered else 0.0
            report[name] = (len(kinds[name]), answered, abandoned, rate)
        # power learned from its first day (loaded at start) and from every dial today;
        # predictive, with no history, from today's dials alone
        today = {
            name: s.scalar(
                select(func.count()).where(
                    m.ContactAttempt.campaign_id == camp_ids[name],
                    m.ContactAttempt.started_at >= t0,
                )
            )
            for name in ("Power", "Predictive")
        }
        assert learned["Power"] == history + today["Power"], (learned, history, today)
        assert learned["Predictive"] == today["Predictive"], (learned, today)
        # the window: nothing dialed after it closed, in New York time
        window_tries = attempts_by_contact(s, camp_ids["Window"])
        assert window_tries, "the window campaign dialed nothing"
        assert all(a.started_at < window_closes for t in window_tries.values() for a in t)
        assert all(len(t) == 1 for t in window_tries.values())  # the retry is after closing
        untouched = [
            c for c in window_contacts if s.get(m.Contact, c).status == m.ContactStatus.NEW
        ]
        assert untouched, "the window closed before the list was done"
        # callbacks: the first to agent31 at once, the second reserved a minute, then agent32
        first, second = (attempts_by_contact(s, camp_ids["Callbacks"])[c] for c in cb_contacts)
        assert [a.agent_id for a in first] == [cb_a]
        assert [a.agent_id for a in second] == [cb_b]
        due2 = s.scalar(
            select(m.ScheduledCallback.due_at).where(
                m.ScheduledCallback.contact_id == cb_contacts[1]
            )
        )
        assert second[0].started_at >= due2 + dt.timedelta(minutes=1)
        assert second[0].started_at < due2 + dt.timedelta(minutes=1, seconds=15)
        assert {r.status for r in s.scalars(select(m.ScheduledCallback))} == {
            m.CallbackStatus.DELIVERED
        }
        # preview: the unanswered offer moved on to another agent
        lazy_legs = s.scalars(
            select(m.CallLeg).where(m.CallLeg.agent_id == lazy, m.CallLeg.role == m.LegRole.AGENT)
        ).all()
        assert lazy_legs and all(leg.answered_at is None for leg in lazy_legs)
        for leg in lazy_legs:
            tries = s.scalars(
                select(m.ContactAttempt).where(m.ContactAttempt.call_id == leg.call_id)
            ).all()
            assert tries and all(t.agent_id not in (None, lazy) for t in tries)

    # the same day counted from the customers' side: SIPp's own log of every call (a
    # number on two campaigns' lists is left out: its calls cannot be told apart)
    lived = {}
    with cube.tx() as s:
        lists = {
            name: {
                c.id: c.phone.lstrip("+")
                for c in s.scalars(select(m.Contact).where(m.Contact.campaign_id == cid))
            }
            for name, cid in camp_ids.items()
        }
        for name in ("Power", "Predictive", "Preview"):
            others = set().union(*(set(v.values()) for k, v in lists.items() if k != name))
            mine = {cid: ph for cid, ph in lists[name].items() if ph not in others}
            results = [  # today's (power's seeded first day is not in SIPp's log)
                a.result
                for a in s.scalars(
                    select(m.ContactAttempt).where(
                        m.ContactAttempt.campaign_id == camp_ids[name],
                        m.ContactAttempt.started_at >= t0,
                    )
                )
                if a.contact_id in mine
            ]
            ours = (
                sum(r in (m.CallState.ENDED, m.CallState.ABANDONED) for r in results),
                results.count(m.CallState.ABANDONED),
            )
            lived[name] = (*customer_drops(customers.trace_dir, set(mine.values())), *ours)
            print(
                f"{name:>10}, {len(mine)} contacts on no other list: SIPp's log {lived[name][0]} "
                f"answered, {lived[name][1]} dropped; our rows {ours[0]} answered, "
                f"{ours[1]} abandoned"
            )
    assert not unheard, unheard
    for name, (_n, answered, abandoned, rate) in report.items():
        assert rate <= CAP, (name, answered, abandoned)
        # the customers lived the same answers, and were dropped under the cap as they
        # count it (hung up by us before they hung up: no agent took them)
        sipp_answered, sipp_dropped, our_answered, _ = lived[name]
        assert sipp_answered == our_answered > 0, (name, lived[name])
        assert sipp_dropped <= CAP * sipp_answered, (name, lived[name])
    # the cold predictive campaign learned first, then dialed ahead of its free agents
    assert pacing.reasons["learning"] and pacing.ahead > 0, (dict(pacing.reasons), pacing.ahead)
    assert delays.max < 2.0  # exact: the histogram keeps its greatest value
    # issue #11 item 11: with a call's writes and the preview/callback claims on the loop
    # (88 s of DB work in a day, most of it finish) this day failed under load with loop
    # lag p99 743 ms; they run in a worker thread (p99 15 ms at load 12, stress-ng)
    off_loop = {"finish", "claim", "dialed", "bridged", "agent_leg", "answered"}
    assert not set(cube.dialer.db_on_loop_by) & off_loop, cube.dialer.db_on_loop_by
    assert pct(lag.lags, 0.99) < 0.5, lag_text


async def _on_call(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.call and view.call.state == "connected" else None


async def _paused(desk, agent_id):
    view = await desk.view(agent_id)
    return view.state == "paused" and view.pause_reason == "no_answer"


@pytest.mark.parametrize("cube", [SLOW_RING], indirect=True)
async def test_abandon_rule_message_log_and_retry(cube, sandbox, customers, tmp_path):
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
        await assert_nothing_left(sandbox, "both abandoned")
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


async def _ended(cube, contact_id):
    return await asyncio.to_thread(_ended_at, cube, contact_id)  # off the product's loop


def _ended_at(cube, contact_id):
    with cube.tx() as s:
        return s.scalar(
            select(m.Call.ended_at).where(
                m.Call.contact_id == contact_id, m.Call.ended_at.is_not(None)
            )
        )


async def test_blending_and_feedback(cube, sandbox, customers, tmp_path):
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
        await assert_nothing_left(sandbox, "the blended calls over")
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


async def _has_status(cube, contact_id, status):
    return await asyncio.to_thread(_contact_status, cube, contact_id) == status


def _contact_status(cube, contact_id):
    with cube.tx() as s:
        return s.get(m.Contact, contact_id).status


@pytest.mark.parametrize("cube", [SLOW_RING], indirect=True)
async def test_answering_machine_detection(cube, sandbox, customers, tmp_path):
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
        await assert_nothing_left(sandbox, "the machine's call over")
    with cube.tx() as s:
        call = s.scalar(select(m.Call).where(m.Call.contact_id == silent))
        attempt = s.scalar(select(m.ContactAttempt))
        contact = s.get(m.Contact, silent)
        print(f"\nAMD: {call.state.value} {call.end_reason}")
        assert (call.state, call.end_reason) == (m.CallState.MACHINE, "machine")
        assert attempt.result == m.CallState.MACHINE and attempt.agent_id is None
        assert contact.status == m.ContactStatus.NOT_ANSWERED
        assert not [leg for leg in call.legs if leg.role == m.LegRole.AGENT]
