"""Cross-node legs on real parts (issue #14): two sandbox Asterisks joined by the trunk that
`dialplan install` generates from the nodes table, a `serve` beside each, one PostgreSQL.
A caller on node A's Asterisk is answered by an agent whose phone (SIPp) is registered on
node B's Asterisk: A rings it over the trunk, B's Stasis app rings the phone and bridges.
Whichever side hangs up (the caller, the agent's phone, the desk), no channel stays up on
either Asterisk (ARI ``GET /channels`` on both, ``core show channels``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nodekit
import pytest
from agent_client import AgentClient
from cubeproc import Serve
from dialerkit import customers, number  # noqa: F401 - the SIPp customers fixture
from sandbox_fixtures import TEST_BASE_PORT
from sippkit import caller, phone, talking_caller
from support.polling import until

from asterisk_cube.sandbox import PASSWORD as ARI_PASSWORD
from asterisk_cube.sandbox import USERNAME as ARI_USER
from asterisk_cube.sandbox import SandboxInstance

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PEER_BASE_PORT = int(
    os.environ.get("ASTERISK_CUBE_TEST_PEER_BASE_PORT", str(TEST_BASE_PORT - 4500))
)
AGENT_PASSWORD = "agent-password-1"
LINE = "4721000021"
PHONE = 5  # agent05's SIPp phone, on node B's Asterisk


@pytest.fixture(scope="module")
def peer_sandbox(sandbox) -> Iterator[SandboxInstance]:
    """Node B's Asterisk: a second instance of the sandbox on its own ports."""
    inst = SandboxInstance(f"test-{PEER_BASE_PORT}", PEER_BASE_PORT)
    if inst.is_running():
        inst.down()
    inst.up(reset_dialplan=True)
    assert not inst.peers() and not inst.trunk_path.read_text()  # a manual --peer is reset
    try:
        yield inst
    finally:
        inst.down()


async def channels(inst: SandboxInstance) -> list[dict]:
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        resp = await ari.get(f"{inst.ari_url}/ari/channels")
        resp.raise_for_status()
        return list(resp.json())


async def no_channels_left(*instances: SandboxInstance) -> None:
    async def empty() -> bool:
        return all([not await channels(i) for i in instances])

    deadline = time.monotonic() + 15
    while not await empty():
        if time.monotonic() > deadline:
            left = {i.name: [c["name"] for c in await channels(i)] for i in instances}
            raise AssertionError(f"channels still up: {left}")
        await asyncio.sleep(0.05)
    for inst in instances:
        assert "0 active channels" in inst.rx("core show channels count"), inst.name


async def audio_reaches_the_phone(inst: SandboxInstance) -> None:
    """RTP flows from the trunk leg to the agent's phone on B (ARI rtp_statistics): the
    caller's audio crossed both Asterisks."""
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        legs = {c["name"].split("-")[0]: c["id"] for c in await channels(inst)}
        deadline = time.monotonic() + 10
        while True:
            stats = {}
            for name, channel in legs.items():
                resp = await ari.get(f"{inst.ari_url}/ari/channels/{channel}/rtp_statistics")
                stats[name] = resp.json() if resp.status_code == 200 else {}
            trunk_rx = stats.get("PJSIP/cube", {}).get("rxcount", 0)
            phone_tx = stats.get("PJSIP/agent05", {}).get("txcount", 0)
            if trunk_rx > 10 and phone_tx > 10:
                return
            assert time.monotonic() < deadline, f"no audio through B: {stats}"
            await asyncio.sleep(0.1)


def node(inst: SandboxInstance, workdir: Path, pg_url: str, name: str, **env: str) -> Serve:
    """A node beside ``inst``, its trunk address set (tests/nodekit.py)."""
    return nodekit.node(inst, workdir, pg_url, name, sip_address=True, **env)


async def connected_call(agent: AgentClient) -> int:
    async with agent.events() as events:
        view = await events.wait_for(lambda v: v["offer"], timeout=20)
        call_id = view["offer"]["call_id"]
        await agent.accept(call_id)
        await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "connected", timeout=30)
    return int(call_id)


async def close(agent: AgentClient, call_id: int) -> None:
    """The desk sees the call end and closes it (the agent may take the next)."""
    async with agent.events() as events:
        await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "ended", timeout=20)
    await agent.close_call(call_id)


async def test_a_caller_on_node_a_talks_to_an_agent_on_node_b(
    sandbox, peer_sandbox, pg_db, tmp_path
):
    a = node(sandbox, tmp_path / "a", pg_db, "a")
    b = node(peer_sandbox, tmp_path / "b", pg_db, "b")
    a.cli("line", "add", LINE, "--name", "Support", "--offer-timeout", "20")
    a.cli(
        "agent", "add", "agent05", "--endpoint", "PJSIP/agent05@cube-node-b",
        "--password", AGENT_PASSWORD, "--line", LINE,
    )  # fmt: skip
    # each node records its SIP address; A again once B's is known
    for srv in (a, b, a):
        srv.cli("dialplan", "install")
    assert "cube-node-b" in sandbox.rx("pjsip show endpoints")
    assert "cube-node-a" in peer_sandbox.rx("pjsip show endpoints")
    assert "agent05" in peer_sandbox.rx("dialplan show cube-from-nodes")
    a.start()
    b.start()
    agent = AgentClient(a.url)
    try:
        await agent.login("agent05", AGENT_PASSWORD)
        view = await agent.start()
        await agent.choose_lines([ln["line_id"] for ln in view["lines"]])
        port = peer_sandbox.agent_port(PHONE)
        with phone(peer_sandbox, port, tmp_path / "p", answer_ms=100) as ph:
            # 1. the caller hangs up
            call = caller(sandbox, LINE, tmp_path / "c1", caller_id="91000001", hold_ms=8000)
            call.start()
            await agent.ready()
            first = await connected_call(agent)
            on_a = {c["name"].split("-")[0] for c in await channels(sandbox)}
            on_b = {c["name"].split("-")[0] for c in await channels(peer_sandbox)}
            assert on_a == {"PJSIP/carrier", "PJSIP/cube"}, on_a  # caller + trunk leg
            assert on_b == {"PJSIP/cube", "PJSIP/agent05"}, on_b  # trunk leg + phone
            result = await asyncio.to_thread(call.wait, 60)
            assert result.ok, result.summary()
            await no_channels_left(sandbox, peer_sandbox)

            # 2. the desk's Hang up on node A; the caller's tone reaches the phone on B
            await close(agent, first)
            call = talking_caller(sandbox, LINE, tmp_path / "c2", caller_id="91000002")
            call.start()  # the agent is ready again once the call is closed
            call_id = await connected_call(agent)
            await audio_reaches_the_phone(peer_sandbox)
            await agent.hangup(call_id)
            await no_channels_left(sandbox, peer_sandbox)
            assert (await asyncio.to_thread(call.wait, 30)).ok

            # 3. Hang up on node B (the agent's leg there ends: a phone or an operator)
            await close(agent, call_id)
            call = caller(sandbox, LINE, tmp_path / "c3", caller_id="91000003", hold_ms=60000)
            call.start()  # the agent is ready again once the call is closed
            third = await connected_call(agent)
            phone_leg = next(
                c["id"] for c in await channels(peer_sandbox) if "agent05" in c["name"]
            )
            async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
                resp = await ari.delete(f"{peer_sandbox.ari_url}/ari/channels/{phone_leg}")
                assert resp.status_code == 204, resp.text
            await no_channels_left(sandbox, peer_sandbox)
            assert (await asyncio.to_thread(call.wait, 30)).ok
            await close(agent, third)
        stats = ph.stop()
        assert stats.successful == 3, stats.summary()  # the phone on B took three calls

        # 4. the agent's phone on B hangs up itself (BYE from the SIPp phone)
        with phone(peer_sandbox, port, tmp_path / "p4", answer_ms=100, talk_ms=1500) as ph:
            call = caller(sandbox, LINE, tmp_path / "c4", caller_id="91000004", hold_ms=60000)
            call.start()
            fourth = await connected_call(agent)
            await no_channels_left(sandbox, peer_sandbox)
            assert (await asyncio.to_thread(call.wait, 30)).ok
            await close(agent, fourth)
        assert ph.stop().successful == 1

        # 5. the caller hangs up while the phone on B still rings: B stops ringing it
        with phone(peer_sandbox, port, tmp_path / "p5", answer_ms=20000) as ph:
            call = caller(sandbox, LINE, tmp_path / "c5", caller_id="91000005", hold_ms=2500)
            async with agent.events() as events:
                call.start()
                view = await events.wait_for(lambda v: v["offer"], timeout=20)
                await agent.accept(view["offer"]["call_id"])
                await until(
                    lambda: "agent05" in peer_sandbox.rx("core show channels"), 10, "B rings"
                )
            assert (await asyncio.to_thread(call.wait, 30)).ok
            await no_channels_left(sandbox, peer_sandbox)
    finally:
        await agent.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
    assert "crossnode_bridged" in b.log()


async def test_a_power_call_reaches_an_agent_on_node_b_with_auto_answer(
    sandbox,
    peer_sandbox,
    pg_db,
    tmp_path,
    customers,  # noqa: F811 - fixture imported above
):
    """The dialer's agent leg crosses the trunk too, and the phone on B is rung with the
    same auto-answer headers as a local one (X-Cube-Auto-Answer over the trunk)."""
    a = node(sandbox, tmp_path / "a", pg_db, "a")
    b = node(peer_sandbox, tmp_path / "b", pg_db, "b")
    a.cli("campaign", "add", "Remote", "--mode", "power", "--skill", "xn", "--wrap-up", "0")
    a.cli(
        "agent", "add", "agent05", "--endpoint", "PJSIP/agent05@cube-node-b",
        "--password", AGENT_PASSWORD, "--skill", "xn",
    )  # fmt: skip
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone\n{number(1, 5, 0, 1)}\n")  # answers, stays until hung up
    a.cli("contacts", "import", "Remote", str(contacts))
    for srv in (a, b, a):
        srv.cli("dialplan", "install")
    a.cli("campaign", "start", "Remote")
    a.start()
    b.start()
    agent = AgentClient(a.url)
    try:
        await agent.login("agent05", AGENT_PASSWORD)
        await agent.start()
        port = peer_sandbox.agent_port(PHONE)
        with phone(peer_sandbox, port, tmp_path / "p", answer_ms=100) as ph:
            async with agent.events() as events:
                await agent.ready()
                view = await events.wait_for(
                    lambda v: v["call"] and v["call"]["state"] == "connected", timeout=30
                )
            trace = (ph.trace_dir / "messages.log").read_text(errors="replace")
            assert "info=alert-autoanswer" in trace  # in the INVITE to the phone on B
            assert "answer-after=0" in trace
            await agent.hangup(view["call"]["call_id"])
            await no_channels_left(sandbox, peer_sandbox)
    finally:
        await agent.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
