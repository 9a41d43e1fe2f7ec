"""Inbound end to end: `asterisk-cube serve` as a real process on the sandbox Asterisk,
SIPp callers and agent phones, and test agents using the desktop's own JSON API + SSE.

Covers issue 4's proof: who got which call in which order (line priority before wait),
a caller hanging up in queue becomes a missed call, an unaccepted offer moves on, and
killing `serve` (SIGKILL) with calls waiting loses none.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from agent_client import AgentClient
from cubeproc import Serve
from sippkit import caller, phone

pytestmark = pytest.mark.integration

PASSWORD = "agent-password-1"
LOW, HIGH = "4721000011", "4721000012"


@pytest.fixture
def serve(sandbox, tmp_path):
    agents = [
        ["agent", "add", f"agent{n:02d}", "--endpoint", f"PJSIP/agent{n:02d}",
         "--password", PASSWORD, "--line", LOW, "--line", HIGH]
        for n in (1, 2)
    ]  # fmt: skip
    srv = Serve.on_sandbox(
        sandbox,
        tmp_path,
        ["line", "add", LOW, "--name", "Low", "--priority", "1", "--offer-timeout", "5"],
        ["line", "add", HIGH, "--name", "High", "--priority", "9", "--offer-timeout", "5"],
        *agents,
        ["dialplan", "install"],
    )
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


async def agent(srv: Serve, n: int) -> AgentClient:
    client = AgentClient(srv.url)
    await client.login(f"agent{n:02d}", PASSWORD)
    view = await client.start()
    ids = {ln["did"]: ln["line_id"] for ln in view["lines"]}
    await client.choose_lines([ids[LOW], ids[HIGH]])
    return client


async def wait_view(client: AgentClient, predicate, timeout: float = 15.0, what: str = ""):
    async with client.events() as events:
        try:
            return await events.wait_for(predicate, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {await client.view()}") from None


def waiting(view, did):
    return next(ln["waiting"] for ln in view["lines"] if ln["did"] == did)


async def test_priority_order_accept_and_missed_call(serve, sandbox, tmp_path):
    a1, a2 = await agent(serve, 1), await agent(serve, 2)
    try:
        with (
            phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=200),
            phone(sandbox, sandbox.agent_port(2), tmp_path / "p2", answer_ms=200),
        ):
            c_low = caller(
                sandbox, LOW, tmp_path / "c1", caller_id="91000001", hold_ms=12000, slot=0
            ).start()
            await wait_view(a1, lambda v: waiting(v, LOW) == 1, what="low call waiting")
            c_high = caller(
                sandbox, HIGH, tmp_path / "c2", caller_id="91000002", hold_ms=12000, slot=1
            ).start()
            await wait_view(a1, lambda v: waiting(v, HIGH) == 1, what="high call waiting")
            # A caller who gives up while waiting becomes a missed call (F-I7).
            gives_up = caller(
                sandbox, LOW, tmp_path / "c3", caller_id="91000003", hold_ms=1500, slot=2
            )
            assert (await asyncio.to_thread(gives_up.run, 30)).ok
            view = await wait_view(a1, lambda v: v["missed"], what="missed call")
            assert [m["caller"] for m in view["missed"]] == ["91000003"]

            # agent02 is ready first: it gets the younger call on the higher-priority line.
            await a2.ready()
            v2 = await wait_view(a2, lambda v: v["offer"], what="offer to agent02")
            assert (v2["offer"]["caller"], v2["offer"]["did"]) == ("91000002", HIGH)
            await a2.accept(v2["offer"]["call_id"])
            await wait_view(
                a2,
                lambda v: v["call"] and v["call"]["state"] == "connected",
                what="agent02 connected",
            )
            await a1.ready()
            v1 = await wait_view(a1, lambda v: v["offer"], what="offer to agent01")
            assert v1["offer"]["caller"] == "91000001"
            await a1.accept(v1["offer"]["call_id"])
            v1 = await wait_view(
                a1,
                lambda v: v["call"] and v["call"]["state"] == "connected",
                what="agent01 connected",
            )
            assert v1["call"]["did"] == LOW and v1["call"]["caller"] == "91000001"
            for c in (c_low, c_high):
                result = await asyncio.to_thread(c.wait, 30)
                assert result.ok, result.summary()
            await wait_view(
                a1, lambda v: v["call"] and v["call"]["state"] == "ended", what="call ended"
            )
            await a1.mark_missed_processed(view["missed"][0]["missed_id"])
            assert (await a1.view())["missed"] == []
    finally:
        await a1.aclose()
        await a2.aclose()


async def test_unaccepted_offer_moves_on_and_pauses_the_agent(serve, sandbox, tmp_path):
    a1, a2 = await agent(serve, 1), await agent(serve, 2)
    try:
        await a1.ready()
        await asyncio.sleep(0.05)
        await a2.ready()  # agent01 has been idle longer: it is offered first
        c = caller(sandbox, LOW, tmp_path / "c", caller_id="91000009", hold_ms=9000).start()
        v1 = await wait_view(a1, lambda v: v["offer"], what="offer to agent01")
        started = time.monotonic()
        v2 = await wait_view(a2, lambda v: v["offer"], timeout=15, what="offer moving on")
        assert v2["offer"]["call_id"] == v1["offer"]["call_id"]
        assert time.monotonic() - started >= 3  # after the 5 s offer timeout, not at once
        v1 = await a1.view()
        assert (v1["state"], v1["pause_reason"], v1["offer"]) == ("paused", "no_answer", None)
        await a2.decline(v2["offer"]["call_id"])
        c.stop()
    finally:
        await a1.aclose()
        await a2.aclose()


async def test_killing_serve_with_calls_waiting_loses_none(serve, sandbox, tmp_path):
    a1 = await agent(serve, 1)
    callers = []
    try:
        for i in range(3):  # one after the other, so the queue order is known
            callers.append(
                caller(
                    sandbox, LOW, tmp_path / f"c{i}", caller_id=f"9200000{i}", hold_ms=30000, slot=i
                ).start()
            )
            await wait_view(
                a1, lambda v, n=i + 1: waiting(v, LOW) == n, what=f"{i + 1} calls waiting"
            )
    finally:
        await a1.aclose()
    serve.kill()  # no clean shutdown: state must come from the DB and ARI
    serve.start()
    a1 = AgentClient(serve.url)
    try:
        await a1.login("agent01", PASSWORD)
        view = await a1.view()
        assert waiting(view, LOW) == 3
        await a1.ready()
        order = []
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=100):
            for _ in range(3):
                v = await wait_view(a1, lambda v: v["offer"], what="offer after restart")
                order.append(v["offer"]["caller"])
                await a1.accept(v["offer"]["call_id"])
                v = await wait_view(
                    a1,
                    lambda v: v["call"] and v["call"]["state"] == "connected",
                    what="connected after restart",
                )
                await a1.hangup(v["call"]["call_id"])
                await wait_view(
                    a1, lambda v: v["call"] and v["call"]["state"] == "ended", what="ended"
                )
                await a1.close_call(v["call"]["call_id"])
        assert order == ["92000000", "92000001", "92000002"]
    finally:
        await a1.aclose()
    for c in callers:
        assert (await asyncio.to_thread(c.wait, 40)).ok
