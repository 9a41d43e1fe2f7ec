"""Issue #14 item 1 on real parts: two `serve` on one PostgreSQL and one sandbox
Asterisk, one power campaign, agents logged in on each node. Node b starts after node
a's agents logged in (the order that failed: b loaded a's ready agents as its own and
dialed for them too, 33 double offers in a 160-contact run). Now an agent belongs to
the node its desk logged in on: no agent phone ever has two calls at once (from the
SIPp phones' traces and from ARI ``GET /channels``), every call of an agent is its
owner's, and a desk on the other node is refused with 409 naming the owner."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import re
import time
from collections import defaultdict

import httpx
import pytest
from agent_client import AgentClient, ApiError
from sippkit import SCENARIOS, Sipp, phone
from sqlalchemy import func, select
from support.polling import until
from test_nodes_pg import AGENT_PASSWORD, agent_row, node_serve, second_node_env

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction
from asterisk_cube.sandbox import PASSWORD as ARI_PASSWORD
from asterisk_cube.sandbox import USERNAME as ARI_USER
from asterisk_cube.services import provisioning as p

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

CONTACTS = 24
AGENTS = {1: "a", 2: "a", 3: "b", 4: "b"}  # agent number -> the node its desk uses
OPEN = (m.ContactStatus.NEW, m.ContactStatus.DIALING, m.ContactStatus.NOT_ANSWERED)
_BLOCK = re.compile(r"^-{20,} (\S+ \S+)$", re.M)


def call_spans(messages: str) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """(first, last message, Call-ID) of every call in a SIPp message trace."""
    spans: dict[str, list[dt.datetime]] = {}
    parts = _BLOCK.split(messages)
    for stamp, body in zip(parts[1::2], parts[2::2], strict=True):
        found = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if found:
            at = dt.datetime.fromisoformat(stamp)
            spans.setdefault(found.group(1), [at, at])[1] = at
    return sorted((first, last, cid) for cid, (first, last) in spans.items())


def overlaps(spans) -> list[tuple[str, str]]:
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]


async def watch_agent_channels(sandbox, seen: dict[str, int], stop: asyncio.Event) -> None:
    """The most channels each agent endpoint had at once in Asterisk, from ARI."""
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        while not stop.is_set():
            resp = await ari.get(f"{sandbox.ari_url}/ari/channels")
            now: dict[str, int] = defaultdict(int)
            for ch in resp.json():
                name = re.match(r"PJSIP/(agent\d\d)-", ch["name"])
                if name:
                    now[name.group(1)] += 1
            for agent, n in now.items():
                seen[agent] = max(seen.get(agent, 0), n)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


def provision(pg_url: str, contacts: int = CONTACTS, max_attempts: int = 3) -> int:
    engine = make_engine(pg_url)
    try:
        with transaction(make_sessionmaker(engine)) as s:
            camp = p.add_campaign(
                s, "Winter", mode="power", skill="sales", wrap_up=1, max_attempts=max_attempts
            )
            for n in AGENTS:
                p.add_agent(
                    s, f"agent{n:02d}", endpoint=f"PJSIP/agent{n:02d}",
                    password=AGENT_PASSWORD, skills=["sales"],
                )  # fmt: skip
            for i in range(contacts):  # answer after 0.3 s, hang up after 2 s
                s.add(m.Contact(campaign_id=camp.id, phone=f"+47910320{i:02d}", name=f"c{i}"))
            return camp.id
    finally:
        engine.dispose()


def db_rows(pg_url: str, query):
    engine = make_engine(pg_url)
    try:
        with transaction(make_sessionmaker(engine)) as s:
            return s.execute(query).all()
    finally:
        engine.dispose()


async def test_each_node_dials_for_its_own_agents_only(sandbox, pg_db, tmp_path):
    a = node_serve(sandbox, tmp_path / "a", pg_db, "a", ASTERISK_CUBE_DIALER_RING_TIMEOUT="5")
    a.cli("db", "upgrade")
    campaign = provision(pg_db)
    a.cli("dialplan", "install")
    b = node_serve(
        sandbox, tmp_path / "b", pg_db, "b",
        ASTERISK_CUBE_DIALER_RING_TIMEOUT="5", **second_node_env(sandbox),
    )  # fmt: skip
    desks = {n: AgentClient((a if node == "a" else b).url) for n, node in AGENTS.items()}
    seen: dict[str, int] = {}
    stop = asyncio.Event()
    with contextlib.ExitStack() as stack:
        phones = {
            n: stack.enter_context(
                phone(sandbox, sandbox.agent_port(n), tmp_path / f"p{n}", answer_ms=100)
            )
            for n in AGENTS
        }
        customers = stack.enter_context(
            Sipp(
                SCENARIOS / "uas_customer.xml",
                sandbox.customer_ports[0],
                tmp_path / "customers",
                remote=f"127.0.0.1:{sandbox.sip_port}",
                trace_messages=False,
                control_port=sandbox.base_port + 300,
                media_port=sandbox.base_port + 400,
            )
        )
        a.start()
        try:
            for n, node in AGENTS.items():
                if node == "a":  # a's agents log in and are ready before b starts
                    await desks[n].login(f"agent{n:02d}", AGENT_PASSWORD)
                    await desks[n].start()
                    await desks[n].ready()
            b.start()
            for n, node in AGENTS.items():
                if node == "b":
                    await desks[n].login(f"agent{n:02d}", AGENT_PASSWORD)
                    await desks[n].start()
                    await desks[n].ready()
            # a desk on the other node is refused, naming the owner
            other = AgentClient(b.url)
            try:
                await other.login("agent01", AGENT_PASSWORD)
                with pytest.raises(ApiError) as refused:
                    await other.start()
                assert refused.value.status == 409, refused.value
                assert refused.value.reason == "other_node"
                assert "node a" in refused.value.message
            finally:
                await other.aclose()

            watcher = asyncio.create_task(watch_agent_channels(sandbox, seen, stop))
            a.cli("campaign", "start", "Winter")

            def open_contacts() -> int:
                q = select(func.count()).where(
                    m.Contact.campaign_id == campaign, m.Contact.status.in_(OPEN)
                )
                return db_rows(pg_db, q)[0][0]

            await until(lambda: open_contacts() == 0, 180, "every contact dialed")
            stop.set()
            await watcher
        finally:
            stop.set()
            for desk in desks.values():
                await desk.aclose()
            assert b.stop() == 0, b.log()
            assert a.stop() == 0, a.log()
        results = {n: ph.stop() for n, ph in phones.items()}
        customers.stop()

    # from the phones: no agent ever had two calls at once
    for n, result in results.items():
        spans = call_spans(result.messages())
        assert spans, f"agent{n:02d} got no call: {result.summary()}"
        assert overlaps(spans) == [], f"agent{n:02d} had two calls at once"
    # from Asterisk: never two channels of one agent
    assert seen and max(seen.values()) == 1, seen
    # from the rows: every call of an agent was dialed by the node it is logged in on
    rows = db_rows(
        pg_db,
        select(m.Agent.username, m.Call.node, func.count())
        .join(m.Call, m.Call.agent_id == m.Agent.id)
        .group_by(m.Agent.username, m.Call.node),
    )
    by_node = {(user, node) for user, node, _n in rows}
    assert by_node == {(f"agent{n:02d}", node) for n, node in AGENTS.items()}, rows


def claims_of(pg_url: str, node: str) -> set[int]:
    q = select(m.Contact.id).where(
        m.Contact.claimed_by == node, m.Contact.status == m.ContactStatus.DIALING
    )
    return {row[0] for row in db_rows(pg_url, q)}


def node_row(pg_url: str, name: str):
    q = select(m.Node.lease_until, m.Node.taken_over_at).where(m.Node.name == name)
    return db_rows(pg_url, q)[0]


def invites_by_number(messages: str) -> dict[str, set[str]]:
    """The calls (Call-IDs) each dialed number got, from a SIPp UAS message trace."""
    calls: dict[str, set[str]] = defaultdict(set)
    for body in _BLOCK.split(messages)[2::2]:
        number = re.search(r"^INVITE sip:(\+?\d+)@", body, re.M)
        cid = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if number and cid:
            calls[number.group(1)].add(cid.group(1))
    return calls


async def test_a_killed_nodes_claims_are_released_after_its_lease_only(sandbox, pg_db, tmp_path):
    """Issue #14 item 2: ``kill -9`` of node b mid-campaign. Its claims stay claimed
    until its lease (3 s here) expired, then node a releases them, logs b's agents out
    and keeps dialing the list alone; no contact is dialed twice (customers' trace)."""
    env = {"ASTERISK_CUBE_DIALER_RING_TIMEOUT": "5", "ASTERISK_CUBE_NODE_LEASE_SECONDS": "3"}
    a = node_serve(sandbox, tmp_path / "a", pg_db, "a", **env)
    a.cli("db", "upgrade")
    campaign = provision(pg_db, contacts=24, max_attempts=1)
    a.cli("dialplan", "install")
    b = node_serve(sandbox, tmp_path / "b", pg_db, "b", **env, **second_node_env(sandbox))
    desks = {n: AgentClient((a if node == "a" else b).url) for n, node in AGENTS.items()}
    with contextlib.ExitStack() as stack:
        for n in AGENTS:
            stack.enter_context(phone(sandbox, sandbox.agent_port(n), tmp_path / f"p{n}"))
        customers = stack.enter_context(
            Sipp(
                SCENARIOS / "uas_customer.xml",
                sandbox.customer_ports[0],
                tmp_path / "customers",
                remote=f"127.0.0.1:{sandbox.sip_port}",
                control_port=sandbox.base_port + 300,
                media_port=sandbox.base_port + 400,
            )
        )
        a.start()
        b.start()
        try:
            for n in AGENTS:
                await desks[n].login(f"agent{n:02d}", AGENT_PASSWORD)
                await desks[n].start()
                await desks[n].ready()
            a.cli("campaign", "start", "Winter")
            await until(lambda: claims_of(pg_db, "b"), 60, "node b dialing")
            b.kill()
            held = claims_of(pg_db, "b")
            lease_until, _ = node_row(pg_db, "b")
            # until a takes over, b's claims stay exactly as b left them (sampled)
            deadline = time.monotonic() + 30
            while node_row(pg_db, "b")[1] is None:
                assert claims_of(pg_db, "b") == held
                assert a.proc.poll() is None, a.log()
                assert time.monotonic() < deadline, f"no takeover of b: {a.log()}"
                await asyncio.sleep(0.05)
            _, taken_over_at = node_row(pg_db, "b")
            assert taken_over_at >= lease_until  # never before the lease expired
            assert claims_of(pg_db, "b") == set()
            for n, node in AGENTS.items():
                if node == "b":
                    assert agent_row(pg_db, f"agent{n:02d}") == ("logged_out", "b")

            def open_contacts() -> int:
                q = select(func.count()).where(
                    m.Contact.campaign_id == campaign, m.Contact.status.in_(OPEN)
                )
                return db_rows(pg_db, q)[0][0]

            await until(lambda: open_contacts() == 0, 180, "node a dialed the rest")
            after = db_rows(
                pg_db,
                select(func.count()).where(m.Call.node == "a", m.Call.started_at > taken_over_at),
            )[0][0]
            assert after > 0  # a went on dialing the list
        finally:
            for desk in desks.values():
                await desk.aclose()
            assert a.stop() == 0, a.log()
        result = customers.stop()
    # from the customers' side: every number was called at most once
    calls = invites_by_number(result.messages())
    assert calls and all(len(ids) == 1 for ids in calls.values()), {
        n: len(ids) for n, ids in calls.items() if len(ids) > 1
    }
