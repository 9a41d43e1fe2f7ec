"""The demo's traffic simulator (issue #16): a contact center that lives while you watch.

Beside a running demo (``asterisk-cube demo run --traffic``, or ``asterisk-cube demo traffic``
against one already running) it plays, on the sandbox Asterisk:

* **callers** on every demo line, arriving at a rate that drifts up and down over a
  ten-minute cycle (Poisson arrivals around it): most wait until an agent has talked with
  them, some give up while they wait (a few seconds to half a minute), calls to the
  answering-service client come at any hour (out of its hours they get its closed
  handling), and some of those are from numbers on the client's ad-block list;
* **agents**: every demo agent but ``agent01`` (and the supervisor and admin), left for the
  person trying the demo, is a SIPp phone plus a desk session through the desk's own JSON
  API and event stream (:mod:`.desk_client`): it starts work on all its lines, accepts an
  offer after a human delay, talks, hangs up, registers the enquiry, wraps up, and takes a
  break now and then;
* **customers** of the predictive campaign "Winter offer": one SIPp process answering as
  the dialled number says (``uas_customer.xml``), with realistic answer rates (about a third
  answer; others never answer, are busy, unavailable, or an answering machine). The
  simulator tops up the campaign's contacts, opens its calling window to the whole week and
  starts it, so the panel's pacing figures move.

All decisions (when the next caller comes, how long someone talks...) are drawn by
:class:`Plan` from one seeded ``random.Random``; the rest is I/O. Ctrl-C (or SIGTERM) stops
everything it started: the agents' desk sessions end, every SIPp process is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.logs import get_logger
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.demo_data import (
    ADBLOCKED,
    CLIENT_DID,
    HOTLINE_DID,
    OUTBOUND_CAMPAIGN,
    SERVICE_DID,
)

from . import sipp
from .desk_client import DeskClient, DeskError

log = get_logger(__name__)

#: share of the callers per line (service, hotline, answering-service client)
LINE_WEIGHTS = {SERVICE_DID: 0.5, HOTLINE_DID: 0.3, CLIENT_DID: 0.2}
CYCLE_S = 600.0  # the arrival rate's cycle
CONTACTS_TOP_UP = 1500  # open contacts the campaign keeps
CARRIER_SLOTS = 19  # sandbox carrier ports base+100..118 (one caller each at a time)
# base+119 is the test call's (demo/testcall.py: `demo call`, the desk's Test call)


async def wait_ready(web_url: str, timeout: float = 600.0) -> None:
    """Until ``serve`` answers ``GET /ready`` with 200 (it starts beside us)."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=web_url, timeout=5.0) as http:
        while True:
            try:
                if (await http.get("/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{web_url} not ready after {timeout:.0f} s")
            await asyncio.sleep(0.5)


@dataclass(frozen=True)
class CallerPlan:
    did: str
    number: str
    hold_ms: int  # on the line after Asterisk answers (waiting + talking), then hangs up
    kind: str  # patient | impatient | adblocked


@dataclass
class Plan:
    """Every random decision of the simulation, from one seeded generator."""

    rng: random.Random
    calls_per_minute: float = 3.0

    def rate(self, t: float) -> float:
        """Callers per second ``t`` seconds into the run: the mean ± 60 % over a cycle."""
        return self.calls_per_minute / 60 * (1 + 0.6 * math.sin(2 * math.pi * t / CYCLE_S))

    def next_arrival(self, t: float) -> float:
        """Seconds until the next caller (exponential at the current rate)."""
        return self.rng.expovariate(max(self.rate(t), 1e-4))

    def caller(self) -> CallerPlan:
        r = self.rng
        did = r.choices(list(LINE_WEIGHTS), weights=list(LINE_WEIGHTS.values()))[0]
        if did == CLIENT_DID and r.random() < 0.2:
            return CallerPlan(did, r.choice(ADBLOCKED), 20_000, "adblocked")
        number = f"+47{r.choice('49')}{r.randrange(10**7):07d}"
        if r.random() < 0.25:  # gives up after 5-35 s (waiting, or early in the talk)
            return CallerPlan(did, number, r.randint(5_000, 35_000), "impatient")
        return CallerPlan(did, number, 600_000, "patient")  # stays until the agent ends

    def accept_delay(self) -> float:
        return self.rng.uniform(1.5, 6.0)

    def talk(self, outbound: bool = False) -> float:
        return self.rng.uniform(8.0, 25.0) if outbound else self.rng.uniform(15.0, 60.0)

    def register_delay(self) -> float:
        return self.rng.uniform(2.0, 6.0)

    def wrap_up(self) -> float:
        return self.rng.uniform(3.0, 12.0)

    def takes_break(self) -> bool:
        """After a call: does the agent take a break now (about one call in eight)?"""
        return self.rng.random() < 0.12

    def break_length(self) -> float:
        return self.rng.uniform(20.0, 75.0)

    def customer(self, serial: int) -> str:
        """A campaign contact's number; its last seven digits B RR TT SS tell the SIPp
        customer how to behave (``uas_customer.xml``). About a third answer."""
        r = self.rng
        x = r.random()
        if x < 0.34:
            b, ring = 1, r.randint(15, 80)  # answers after 1.5-8 s, waits for the agent's BYE
        elif x < 0.39:
            b, ring = 5, r.randint(20, 60)  # an answering machine
        elif x < 0.69:
            b, ring = 2, 0  # never answers
        elif x < 0.84:
            b, ring = 3, 0  # busy
        else:
            b, ring = 4, r.randint(30, 99)  # unavailable after a while
        return f"+479{b}{ring:02d}00{serial % 100:02d}"

    def pick_topics(self, categories: list[dict[str, Any]]) -> list[int]:
        """One topic per category (two now and then where several are allowed); never a
        "call back" outcome (that asks for a callback time)."""
        picks: list[int] = []
        for cat in categories:
            topics = [t for t in cat["topics"] if "call back" not in t["name"].lower()]
            if not topics:
                continue
            k = 2 if cat.get("multi") and len(topics) > 1 and self.rng.random() < 0.3 else 1
            picks += [t["topic_id"] for t in self.rng.sample(topics, k)]
        return picks


@dataclass
class Counts:
    callers: int = 0
    impatient: int = 0
    adblocked: int = 0
    no_slot: int = 0
    accepted: int = 0
    talked: int = 0
    registered: int = 0
    breaks: int = 0
    errors: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)


def prepare_campaign(sessions: sessionmaker[Session], plan: Plan, now: dt.datetime) -> str:
    """Open the demo campaign's window to the whole week, top up its contacts with
    simulated customers and start it (a demo dials at any hour)."""
    with transaction(sessions) as s:
        campaign = p.get_campaign(s, OUTBOUND_CAMPAIGN)
        p.update_campaign(s, OUTBOUND_CAMPAIGN, windows="mon-sun 00:00-24:00")
        open_ = (
            s.scalar(
                select(func.count())
                .select_from(m.Contact)
                .where(m.Contact.campaign_id == campaign.id)
                .where(m.Contact.status == m.ContactStatus.NEW)
            )
            or 0
        )
        serial = s.scalar(select(func.count()).select_from(m.Contact)) or 0
        added = 0
        taken = set(s.scalars(select(m.Contact.phone).where(m.Contact.campaign_id == campaign.id)))
        while open_ + added < CONTACTS_TOP_UP:
            serial += 1
            number = plan.customer(serial)
            if number in taken:
                continue
            taken.add(number)
            s.add(
                m.Contact(
                    campaign_id=campaign.id, phone=number, name=f"Customer {serial}", created_at=now
                )
            )
            added += 1
        if campaign.status != m.CampaignStatus.RUNNING:
            p.set_campaign_status(s, OUTBOUND_CAMPAIGN, "running", actor="demo-traffic")
    return f"campaign {OUTBOUND_CAMPAIGN!r} running ({added} simulated customers added)"


class Agent:
    """One simulated agent: a SIPp phone and a desk session."""

    def __init__(self, traffic: Traffic, username: str, number: int) -> None:
        self.t = traffic
        self.username = username
        self.number = number
        self.view: dict[str, Any] | None = None
        self.changed = asyncio.Event()
        self.done_calls: set[int] = set()
        self.phone: sipp.SippProcess | None = None

    async def run(self) -> None:
        t = self.t
        self.phone = sipp.phone(
            t.sip,
            t.base_port + 200 + self.number,
            answer_ms=int(t.plan.rng.uniform(300, 900)),
            log=t.workdir / f"{self.username}.log",
        ).start()
        t.processes.append(self.phone)
        async with DeskClient(t.web_url) as desk:
            await desk.login(self.username, t.password)
            reader = asyncio.create_task(self._read(desk), name=f"{self.username}-views")
            try:
                view = await desk.view()
                if view["state"] == "logged_out":
                    view = await desk.act("/api/start")
                if view["state"] == "paused":
                    view = await desk.act(
                        "/api/lines", {"line_ids": [ln["line_id"] for ln in view["lines"]]}
                    )
                    view = await desk.act("/api/ready")
                self.view = view
                await self._work(desk)
            finally:
                reader.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._leave(desk), 5)

    async def _leave(self, desk: DeskClient) -> None:
        view = await desk.view()
        call = view.get("call")
        if call and call["state"] != "ended":
            await desk.act(f"/api/calls/{call['call_id']}/hangup")
        await desk.logout()

    async def _read(self, desk: DeskClient) -> None:
        while True:
            try:
                async for view in desk.views():
                    self.view = view
                    self.changed.set()
            except (DeskError, OSError, Exception) as exc:  # the stream ends: reconnect
                log.info("demo_agent_stream", agent=self.username, error=repr(exc))
            await asyncio.sleep(1.0)

    async def _wait_change(self, timeout: float) -> None:
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    async def _work(self, desk: DeskClient) -> None:
        t, plan = self.t, self.t.plan
        while True:
            view = self.view or {}
            try:
                await self._step(desk, view, plan, t)
            except DeskError as exc:  # the state moved on meanwhile: look again
                t.counts.errors += 1
                log.info("demo_agent_refused", agent=self.username, error=str(exc))
                with contextlib.suppress(DeskError):
                    self.view = await desk.view()
                await asyncio.sleep(0.5)

    async def _step(self, desk: DeskClient, view: dict[str, Any], plan: Plan, t: Traffic) -> None:
        state, offer, call = view.get("state"), view.get("offer"), view.get("call")
        if offer:
            await asyncio.sleep(plan.accept_delay())
            self.view = await desk.act(f"/api/offers/{offer['call_id']}/accept")
            t.counts.accepted += 1
            return
        if call and call["state"] != "ended":
            if call["state"] == "connecting":
                await self._wait_change(2.0)
                return
            call_id = call["call_id"]
            talk = plan.talk(outbound=call.get("kind") in ("predictive", "power", "preview"))
            self.changed.clear()
            deadline = time.monotonic() + talk
            while time.monotonic() < deadline:  # the caller may hang up first
                current = (self.view or {}).get("call")
                if not current or current["call_id"] != call_id or current["state"] == "ended":
                    break
                await self._wait_change(deadline - time.monotonic())
            else:
                self.view = await desk.act(f"/api/calls/{call_id}/hangup")
            t.counts.talked += 1
            t.counts.by_agent[self.username] = t.counts.by_agent.get(self.username, 0) + 1
            return
        if call and call["state"] == "ended":
            await asyncio.sleep(plan.register_delay())
            if not call.get("registered"):
                topics = plan.pick_topics(call.get("categories") or [])
                if topics or call.get("registration_required"):
                    await desk.act(
                        f"/api/calls/{call['call_id']}/enquiry",
                        {"topic_ids": topics, "comment": ""},
                    )
                    t.counts.registered += 1
            self.view = await desk.act(f"/api/calls/{call['call_id']}/close")
            if plan.takes_break():
                self.view = await desk.act("/api/pause", {"reason": "break"})
            return
        if state == "wrap_up":
            await asyncio.sleep(plan.wrap_up())
            if (self.view or {}).get("state") == "wrap_up":
                self.view = await desk.act("/api/wrapup/finish")
            return
        if state == "paused":
            if view.get("pause_reason") == "break":
                t.counts.breaks += 1
                await asyncio.sleep(plan.break_length())
            else:
                await asyncio.sleep(2.0)  # a missed offer, or started paused: back to work
            self.view = await desk.act("/api/ready")
            return
        if state == "logged_out":
            self.view = await desk.act("/api/start")
            return
        await self._wait_change(5.0)


class Traffic:
    """Runs the agents, the callers and the campaign's customers until cancelled."""

    def __init__(
        self,
        *,
        web_url: str,
        sip_port: int,
        base_port: int,
        sessions: sessionmaker[Session] | None,
        agents: list[str],
        password: str,
        workdir: Path,
        plan: Plan,
        campaign: bool = True,
        ari: tuple[str, str, str] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.web_url = web_url
        self.sip = f"127.0.0.1:{sip_port}"
        self.base_port = base_port
        self.sessions = sessions
        self.usernames = agents
        self.password = password
        self.workdir = workdir
        self.plan = plan
        self.campaign = campaign
        self.ari = ari  # (url, username, password): to end its calls when it stops
        self.clock = clock
        self.counts = Counts()
        self.processes: list[sipp.SippProcess] = []
        self.callers: dict[int, sipp.SippProcess] = {}  # carrier slot -> its caller

    async def run(self, duration: float | None = None) -> Counts:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tasks: list[asyncio.Task] = []
        try:
            if self.campaign and self.sessions is not None:
                customers = sipp.customers(
                    self.sip, self.base_port + 150, log=self.workdir / "customers.log"
                )
                self.processes.append(customers.start())
                note = await asyncio.to_thread(
                    prepare_campaign, self.sessions, self.plan, self.clock()
                )
                log.info("demo_traffic_campaign", note=note)
            for username in self.usernames:
                agent = Agent(self, username, int(username[-2:]))
                tasks.append(asyncio.create_task(self._keep(agent), name=username))
            tasks.append(asyncio.create_task(self._arrivals(), name="callers"))
            if duration is None:
                await asyncio.gather(*tasks)
            else:
                await asyncio.wait(tasks, timeout=duration)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._hang_up_calls(), 10)
            await asyncio.to_thread(self._stop_processes)
        return self.counts

    async def _keep(self, agent: Agent) -> None:
        """Run an agent; start it again if it failed (serve restarting, say)."""
        while True:
            try:
                await agent.run()
            except asyncio.CancelledError:
                raise
            except DeskError as exc:
                if exc.status == 401:
                    # Not a demo agent (an admin gave it its own password): retrying every
                    # few seconds would only lock it out with the login throttle.
                    log.warning("demo_agent_skipped", agent=agent.username, reason=exc.reason)
                    return
                log.warning("demo_agent_failed", agent=agent.username, error=repr(exc))
            except Exception as exc:
                log.warning("demo_agent_failed", agent=agent.username, error=repr(exc))
            finally:
                if agent.phone is not None:
                    await asyncio.to_thread(agent.phone.stop)
            await asyncio.sleep(3.0)

    async def _arrivals(self) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.plan.next_arrival(time.monotonic() - started))
            self._reap()
            free = [slot for slot in range(CARRIER_SLOTS) if slot not in self.callers]
            if not free:
                self.counts.no_slot += 1
                continue
            plan = self.plan.caller()
            slot = free[0]
            self.callers[slot] = sipp.caller(
                self.sip,
                self.base_port + 100 + slot,
                plan.did,
                plan.number,
                hold_ms=plan.hold_ms,
                log=self.workdir / "callers.log",
            ).start()
            self.counts.callers += 1
            if plan.kind == "impatient":
                self.counts.impatient += 1
            elif plan.kind == "adblocked":
                self.counts.adblocked += 1
            log.info("demo_caller", line=plan.did, caller=plan.number, kind=plan.kind, slot=slot)

    def _ours(self, channel: dict[str, Any]) -> bool:
        """A channel of a phone it runs: a caller or customer on the carrier trunk, or a
        simulated agent's phone."""
        name = channel.get("name", "")
        return name.startswith("PJSIP/carrier-") or any(
            name.startswith(f"PJSIP/{username}-") for username in self.usernames
        )

    async def _hang_up_calls(self) -> None:
        """End the calls of its phones in Asterisk before stopping them: a SIPp process
        that is stopped sends no BYE, and Asterisk would keep the channel (the person's
        `demo call` ends too: the demo is stopping)."""
        if self.ari is None:
            return
        import httpx

        url, username, password = self.ari
        async with httpx.AsyncClient(base_url=url, auth=(username, password), timeout=5) as ari:
            channels = (await ari.get("/ari/channels")).json()
            ours = [ch["id"] for ch in channels if self._ours(ch)]
            await asyncio.gather(
                *(ari.delete(f"/ari/channels/{cid}") for cid in ours), return_exceptions=True
            )
        log.info("demo_traffic_hung_up", channels=len(ours))

    def _reap(self) -> None:
        for slot, proc in list(self.callers.items()):
            if not proc.running():
                del self.callers[slot]

    def _stop_processes(self) -> None:
        for proc in [*self.callers.values(), *self.processes]:
            proc.stop()
        self.callers.clear()
