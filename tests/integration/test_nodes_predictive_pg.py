"""Issue #14: a predictive campaign dialed from two nodes. Two `serve` on one PostgreSQL
and one sandbox Asterisk, two agents logged in on each, SIPp customers of whom some
answer, some never answer and some are busy; one attempt per contact. Asserted from
outside: no number got two INVITEs (customers' SIPp trace), no agent phone had two
calls at once (each phone's SIPp trace; ARI ``GET /channels`` sampled), both nodes
dialed, and the abandons counted from SIPp (customers who answered minus the calls the
agents' phones took) are what the database says and under the campaign's cap."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re

import pytest
from agent_client import AgentClient
from nodekit import (
    AGENT_PASSWORD,
    call_spans,
    customers_sipp,
    db_rows,
    invites_by_number,
    open_contacts,
    overlaps,
    two_nodes,
    watch_agent_channels,
)
from sippkit import phone
from sqlalchemy import func, select
from support.polling import until

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction
from asterisk_cube.services import provisioning as p

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

AGENTS = {1: "a", 2: "a", 3: "b", 4: "b"}  # agent number -> the node its desk uses
CAP = 0.03
_BLOCK = re.compile(r"^-{20,} (\S+ \S+)$", re.M)


def number(behaviour: int, ring: int, talk: int, serial: int) -> str:
    """A customer of tests/sipp/uas_customer.xml: B RR TT SS (see there)."""
    return f"+479{behaviour}{ring:02d}{talk:02d}{serial:02d}"


def customers_list(rng: random.Random, n: int) -> list[str]:
    """Half answer within 1.5 s and talk 3-4 s (past the 2 s abandon decision), a
    quarter never answer (the ring timeout ends them), a quarter are busy."""
    out = []
    for i in range(n):
        x = rng.random()
        if i < 10 or x < 0.5:  # the list opens with answers: the pacer learns from them
            out.append(number(1, rng.randint(1, 15), rng.randint(30, 40), i))
        elif x < 0.75:
            out.append(number(2, 0, 0, i))
        else:
            out.append(number(3, 0, 0, i))
    return out


def provision(pg_url: str, phones: list[str]) -> int:
    engine = make_engine(pg_url)
    try:
        with transaction(make_sessionmaker(engine)) as s:
            camp = p.add_campaign(
                s, "Predictive", mode="predictive", skill="sales", wrap_up=1, max_attempts=1,
                abandon_cap=CAP,
            )  # fmt: skip
            for n in AGENTS:
                p.add_agent(
                    s, f"agent{n:02d}", endpoint=f"PJSIP/agent{n:02d}",
                    password=AGENT_PASSWORD, skills=["sales"],
                )  # fmt: skip
            for i, phone_number in enumerate(phones):
                s.add(m.Contact(campaign_id=camp.id, phone=phone_number, name=f"c{i}"))
            return camp.id
    finally:
        engine.dispose()


def answered_by_customers(messages: str) -> set[str]:
    """The Call-IDs a SIPp customer answered (sent 200 OK to the INVITE)."""
    answered = set()
    for body in _BLOCK.split(messages)[2::2]:
        if re.search(r"^SIP/2\.0 200 OK", body, re.M) and re.search(
            r"^CSeq:\s*\d+ INVITE", body, re.M
        ):
            answered.add(re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I).group(1))
    return answered


@pytest.mark.timeout(600)
async def test_a_predictive_campaign_dialed_from_two_nodes(sandbox, pg_db, tmp_path):
    phones_list = customers_list(random.Random(14), 48)
    a, b = two_nodes(sandbox, pg_db, tmp_path, ASTERISK_CUBE_DIALER_RING_TIMEOUT="5")
    campaign = provision(pg_db, phones_list)
    a.cli("dialplan", "install")
    desks = {n: AgentClient((a if node == "a" else b).url) for n, node in AGENTS.items()}
    seen: dict[str, int] = {}
    doubles: list = []
    stop = asyncio.Event()
    with contextlib.ExitStack() as stack:
        phones = {
            n: stack.enter_context(
                phone(sandbox, sandbox.agent_port(n), tmp_path / f"p{n}", answer_ms=100)
            )
            for n in AGENTS
        }
        customers = stack.enter_context(customers_sipp(sandbox, tmp_path))
        a.start()
        b.start()
        try:
            for n in AGENTS:
                await desks[n].login(f"agent{n:02d}", AGENT_PASSWORD)
                await desks[n].start()
                await desks[n].ready()
            watcher = asyncio.create_task(watch_agent_channels(sandbox, seen, stop, doubles))
            a.cli("campaign", "start", "Predictive")

            await until(lambda: open_contacts(pg_db, campaign) == 0, 300, "every contact dialed")
            stop.set()
            await watcher
        finally:
            stop.set()
            for desk in desks.values():
                await desk.aclose()
            assert b.stop() == 0, b.log()
            assert a.stop() == 0, a.log()
        results = {n: ph.stop() for n, ph in phones.items()}
        trace = customers.stop().messages()

    # the customers: every number called exactly once
    calls = {n.lstrip("+"): ids for n, ids in invites_by_number(trace).items()}
    listed = {n.lstrip("+") for n in phones_list}
    assert calls.keys() == listed, listed ^ calls.keys()
    assert all(len(ids) == 1 for ids in calls.values()), {
        n: len(ids) for n, ids in calls.items() if len(ids) > 1
    }
    # the agents: never two calls at once (phones' traces, ARI)
    taken = 0
    for n, result in results.items():
        spans = call_spans(result.messages())
        assert spans, f"agent{n:02d} got no call: {result.summary()}"
        assert overlaps(spans) == [], f"agent{n:02d} had two calls at once"
        taken += len(spans)
    assert seen and max(seen.values()) == 1, (seen, doubles[:5])
    # both nodes dialed
    by_node = dict(
        db_rows(
            pg_db,
            select(m.Call.node, func.count())
            .where(m.Call.campaign_id == campaign)
            .group_by(m.Call.node),
        )
    )
    assert by_node.keys() == {"a", "b"}, by_node
    # abandons from SIPp: answered by a customer, never reached an agent's phone
    answered = len(answered_by_customers(trace))
    abandoned = answered - taken
    db_abandoned = db_rows(
        pg_db,
        select(func.count()).where(
            m.Call.campaign_id == campaign, m.Call.state == m.CallState.ABANDONED
        ),
    )[0][0]
    assert abandoned == db_abandoned, (answered, taken, db_abandoned)
    assert abandoned <= CAP * answered, (abandoned, answered)
