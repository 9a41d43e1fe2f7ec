"""One queue across nodes on real parts (issue #14): two sandbox Asterisks joined by the
generated trunk, a `serve` beside each, one PostgreSQL, SIPp callers and phones.

1. Callers wait on node A on lines of different priority; the only agent works on node B
   (desk and phone there). B's agent is offered them in global order (priority, then
   queued_at), A rings its phone over the trunk and bridges; asserted from A's ARI
   bridges (which caller talks), the rows and the phone's SIPp trace. Hang-ups from B's
   desk, B's phone leg and A's caller each leave no channel on either Asterisk.
2. A burst: callers waiting on both nodes, agents on both nodes become ready at once: no
   agent phone ever has two calls (SIPp traces, ARI channels sampled every 50 ms on both
   Asterisks), every call is answered once and offered to one agent at a time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

import httpx
import pytest
from agent_client import AgentClient
from sippkit import caller, phone
from sqlalchemy import select
from support.polling import until
from test_crossnode_trunk import (  # noqa: F401 - peer_sandbox is a fixture
    AGENT_PASSWORD,
    channels,
    close,
    connected_call,
    no_channels_left,
    node,
    peer_sandbox,
)
from test_nodes_ownership_pg import call_spans, db_rows, overlaps, watch_agent_channels

from asterisk_cube.db import models as m
from asterisk_cube.sandbox import PASSWORD as ARI_PASSWORD
from asterisk_cube.sandbox import USERNAME as ARI_USER

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LOW, HIGH = "4721000031", "4721000032"


async def bridged_callers(inst) -> set[str]:
    """Caller numbers of the channels that share a mixing bridge with another channel."""
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        bridges = (await ari.get(f"{inst.ari_url}/ari/bridges")).json()
        numbers = {c["id"]: c["caller"]["number"] for c in await channels(inst)}
    return {
        numbers.get(ch, "")
        for b in bridges
        if b["bridge_type"] == "mixing" and len(b["channels"]) >= 2
        for ch in b["channels"]
    } - {""}


async def nobody_talks(inst) -> bool:
    return not await bridged_callers(inst)


def waiting_rows(pg_db: str) -> int:
    return len(db_rows(pg_db, select(m.Call.id).where(m.Call.state == m.CallState.WAITING)))


def two_nodes(sandbox, peer, pg_db, tmp_path: Path, agents: dict[int, str]):
    a = node(sandbox, tmp_path / "a", pg_db, "a")
    b = node(peer, tmp_path / "b", pg_db, "b")
    a.cli("line", "add", LOW, "--name", "Low", "--priority", "1", "--offer-timeout", "20")
    a.cli("line", "add", HIGH, "--name", "High", "--priority", "9", "--offer-timeout", "20")
    for n, where in agents.items():
        endpoint = f"PJSIP/agent{n:02d}" + ("@cube-node-b" if where == "b" else "")
        a.cli(
            "agent", "add", f"agent{n:02d}", "--endpoint", endpoint,
            "--password", AGENT_PASSWORD, "--line", LOW, "--line", HIGH,
        )  # fmt: skip
    for srv in (a, b, a):  # each records its SIP address; A again once B's is known
        srv.cli("dialplan", "install")
    a.start()
    b.start()
    return a, b


async def desk(srv, n: int) -> AgentClient:
    agent = AgentClient(srv.url)
    await agent.login(f"agent{n:02d}", AGENT_PASSWORD)
    view = await agent.start()
    await agent.choose_lines([ln["line_id"] for ln in view["lines"]])
    return agent


async def test_callers_on_a_are_answered_by_bs_agent_in_global_order(
    sandbox,
    peer_sandbox,  # noqa: F811 - the fixture imported above
    pg_db,
    tmp_path,
):
    a, b = two_nodes(sandbox, peer_sandbox, pg_db, tmp_path, {5: "b"})
    agent = await desk(b, 5)  # desk and phone on node B; nobody works on A
    callers = []
    try:
        with phone(peer_sandbox, peer_sandbox.agent_port(5), tmp_path / "p", answer_ms=100) as ph:
            # three callers on A, one after the other: low, high, low
            for slot, (line, number) in enumerate(
                ((LOW, "91000001"), (HIGH, "91000002"), (LOW, "91000003"))
            ):
                call = caller(
                    sandbox, line, tmp_path / f"c{slot}", caller_id=number,
                    hold_ms=120000, slot=slot,
                )  # fmt: skip
                call.start()
                callers.append(call)
                await until(lambda n=slot + 1: waiting_rows(pg_db) == n, 20, "the caller waits")
            await agent.ready()
            order, ids = [], []
            for step in range(3):
                call_id = await connected_call(agent)
                talking = await until(lambda: bridged_callers(sandbox), 10, "A bridges")
                assert len(talking) == 1, talking
                order.append(talking.pop())
                ids.append(call_id)
                if step == 0:  # the desk's Hang up on B
                    await agent.hangup(call_id)
                elif step == 1:  # the phone's leg on B goes (a phone or an operator)
                    leg = next(
                        c["id"] for c in await channels(peer_sandbox) if "agent05" in c["name"]
                    )
                    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
                        await ari.delete(f"{peer_sandbox.ari_url}/ari/channels/{leg}")
                else:  # the caller on A hangs up
                    leg = next(
                        c["id"]
                        for c in await channels(sandbox)
                        if c["caller"]["number"] == order[-1] and "carrier" in c["name"]
                    )
                    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
                        await ari.delete(f"{sandbox.ari_url}/ari/channels/{leg}")
                await until(lambda: nobody_talks(sandbox), 15, "the call ends")
                await close(agent, call_id)
            assert order == ["91000002", "91000001", "91000003"]  # priority, then queued_at
            await no_channels_left(sandbox, peer_sandbox)
        assert ph.stop().successful == 3
        for call in callers:
            assert (await asyncio.to_thread(call.wait, 30)).ok
        rows = db_rows(
            pg_db,
            select(m.Call.caller_number, m.Call.node, m.Call.state, m.Call.answered_at)
            .where(m.Call.id.in_(ids))
            .order_by(m.Call.answered_at),
        )
        assert [(r[0], r[1], r[2]) for r in rows] == [(n, "a", m.CallState.ENDED) for n in order]
    finally:
        for call in callers:
            with contextlib.suppress(Exception):
                call.stop()
        await agent.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
    assert "crossnode_bridged" in b.log()


async def work(agent: AgentClient, done: list[int], total: int) -> None:
    """Take calls until ``total`` were answered by anyone: accept, talk, hang up, close.
    Only the wait for an offer is bounded (the others may have taken the rest); once an
    offer is accepted the call is followed to its end."""
    while len(done) < total:
        async with agent.events() as events:
            try:
                view = await events.wait_for(lambda v: v["offer"], timeout=2)
            except TimeoutError:
                continue
            call_id = view["offer"]["call_id"]
            await agent.accept(call_id)
            await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "connected", 30)
        done.append(call_id)
        await agent.hangup(call_id)
        await close(agent, call_id)


async def test_a_burst_on_both_nodes_never_double_books(
    sandbox,
    peer_sandbox,  # noqa: F811 - the fixture imported above
    pg_db,
    tmp_path,
):
    agents = {1: "a", 5: "b", 6: "b"}
    a, b = two_nodes(sandbox, peer_sandbox, pg_db, tmp_path, agents)
    desks = {n: await desk(a if where == "a" else b, n) for n, where in agents.items()}
    callers, seen_a, seen_b, stop = [], {}, {}, asyncio.Event()
    phones = {
        n: phone(
            sandbox if where == "a" else peer_sandbox,
            (sandbox if where == "a" else peer_sandbox).agent_port(n),
            tmp_path / f"p{n}",
            answer_ms=100,
        )
        for n, where in agents.items()
    }
    try:
        with contextlib.ExitStack() as stack:
            for ph in phones.values():
                stack.enter_context(ph)
            for i, (inst, line) in enumerate(
                itertools.product((sandbox, peer_sandbox), (LOW, HIGH, LOW))
            ):
                call = caller(
                    inst, line, tmp_path / f"c{i}", caller_id=f"9200000{i}",
                    hold_ms=120000, slot=i % 3,
                )  # fmt: skip
                call.start()
                callers.append(call)
                await until(lambda n=i + 1: waiting_rows(pg_db) == n, 20, "the caller waits")
            watchers = [
                asyncio.create_task(watch_agent_channels(sandbox, seen_a, stop)),
                asyncio.create_task(watch_agent_channels(peer_sandbox, seen_b, stop)),
            ]
            done: list[int] = []
            await asyncio.gather(*(d.ready() for d in desks.values()))  # all at once
            await asyncio.wait_for(
                asyncio.gather(*(work(d, done, len(callers)) for d in desks.values())), 180
            )
            stop.set()
            await asyncio.gather(*watchers)
            assert sorted(done) == sorted(set(done)) and len(done) == len(callers), done
            await no_channels_left(sandbox, peer_sandbox)
        for n, ph in phones.items():
            result = ph.stop()
            spans = call_spans(result.messages())
            assert overlaps(spans) == [], f"agent{n:02d} had two calls at once"
        assert max(seen_a.values()) == 1 and max(seen_b.values()) == 1, (seen_a, seen_b)
        offers = db_rows(
            pg_db,
            select(m.CallOffer.call_id, m.CallOffer.offered_at, m.CallOffer.decided_at).order_by(
                m.CallOffer.call_id, m.CallOffer.offered_at
            ),
        )
        for call_id, group in itertools.groupby(offers, key=lambda r: r[0]):
            spans = [(r[1], r[2]) for r in group]
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert end is not None and end <= start, f"call {call_id} offered twice at once"
        for call in callers:
            assert (await asyncio.to_thread(call.wait, 30)).ok
        answered = db_rows(
            pg_db,
            select(m.Call.node, m.Agent.username).join(m.Agent, m.Call.agent_id == m.Agent.id),
        )
        assert len(answered) == len(callers)
        across = [(n, u) for n, u in answered if n != agents[int(u[-2:])]]
        assert across, answered  # the global queue: some went to the other node's agents
    finally:
        stop.set()
        for call in callers:
            with contextlib.suppress(Exception):
                call.stop()
        for d in desks.values():
            await d.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
