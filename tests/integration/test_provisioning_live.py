"""CLI changes reach a running `serve` without a restart (issue #11 item 6).

SQLite: `serve` runs, the CLI adds a line and grants it to a logged-in agent; within 2 s
the agent's desktop shows the line, the agent may choose it (before: 403 "not permitted
to serve line N" until a restart), and a SIPp caller on the new line is answered by the
agent's SIPp phone, seen from Asterisk's side too.

PostgreSQL: two `serve` processes on one database (each its own ARI app name, web and
AGI port); one CLI grant is seen by both within 2 s.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from agent_client import AgentClient, ApiError
from cubeproc import Serve
from sippkit import caller, phone

pytestmark = pytest.mark.integration

PASSWORD = "agent-password-1"
OLD, NEW = "4721000031", "4721000032"
PROPAGATION_LIMIT = 2.0  # seconds: the requirement


@pytest.fixture
def serve(sandbox, tmp_path):
    srv = Serve.on_sandbox(
        sandbox,
        tmp_path,
        ["line", "add", OLD, "--name", "Old", "--offer-timeout", "10"],
        ["agent", "add", "agent01", "--endpoint", "PJSIP/agent01", "--password", PASSWORD,
         "--line", OLD],
        ["dialplan", "install"],
    )  # fmt: skip
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def line_ids(view) -> dict[str, int]:
    return {ln["did"]: ln["line_id"] for ln in view["lines"]}


async def cli(srv: Serve, *args: str) -> float:
    """Run a CLI command (off the loop); the monotonic time it had committed by."""
    await asyncio.to_thread(srv.cli, *args)
    return time.monotonic()


async def seen_within(client: AgentClient, since: float, predicate, what: str) -> float:
    """Seconds from ``since`` until the agent's pushed view satisfies ``predicate``."""
    async with client.events() as events:
        try:
            await events.wait_for(predicate, timeout=15)
        except TimeoutError:
            raise AssertionError(f"{what}: not seen: {await client.view()}") from None
    return time.monotonic() - since


async def test_cli_line_and_grant_reach_a_running_serve(serve, sandbox, tmp_path):
    agent = AgentClient(serve.url)
    try:
        await agent.login("agent01", PASSWORD)
        view = await agent.start()
        await agent.choose_lines([line_ids(view)[OLD]])

        await cli(serve, "line", "add", NEW, "--name", "New", "--offer-timeout", "10")
        granted = await cli(serve, "agent", "grant", "agent01", NEW)
        took = await seen_within(
            agent, granted, lambda v: NEW in line_ids(v), "the granted line on the desktop"
        )
        print(f"\ngrant seen by serve {took:.2f} s after the CLI committed")
        assert took < PROPAGATION_LIMIT
        new_id = line_ids(await agent.view())[NEW]
        await agent.choose_lines([line_ids(await agent.view())[OLD], new_id])  # was a 403

        # The new DID exists in Asterisk only once the dialplan is installed again.
        await cli(serve, "dialplan", "install")
        assert NEW in sandbox.rx("dialplan show cube-inbound")
        await agent.ready()
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=100):
            c = caller(sandbox, NEW, tmp_path / "c1", caller_id="93000001", hold_ms=6000).start()
            async with agent.events() as events:
                view = await events.wait_for(lambda v: v["offer"], timeout=20)
            assert (view["offer"]["did"], view["offer"]["caller"]) == (NEW, "93000001")
            call_id = view["offer"]["call_id"]
            await agent.accept(call_id)
            async with agent.events() as events:
                await events.wait_for(
                    lambda v: v["call"] and v["call"]["state"] == "connected", timeout=20
                )
            # A reload during the call (the line revoked from the agent, a line renamed)
            # leaves the call alone.
            changed = await cli(serve, "agent", "revoke", "agent01", NEW)
            await cli(serve, "line", "set", OLD, "--name", "Renamed")
            took = await seen_within(
                agent,
                changed,
                lambda v: NEW not in line_ids(v) and v["call"]["state"] == "connected",
                "the revoke during the call",
            )
            assert took < PROPAGATION_LIMIT + 1.5  # two CLI runs in between
            # From Asterisk's side: the caller and agent01's phone share the call's bridge.
            bridge = sandbox.rx(f"bridge show cube-call-{call_id}")
            assert "PJSIP/agent01" in bridge and "PJSIP/carrier" in bridge, bridge
            result = await asyncio.to_thread(c.wait, 30)
            assert result.ok, result.summary()
    finally:
        await agent.aclose()


async def test_cli_revoke_reaches_a_running_serve(serve):
    agent = AgentClient(serve.url)
    try:
        await agent.login("agent01", PASSWORD)
        view = await agent.start()
        old_id = line_ids(view)[OLD]
        await cli(serve, "line", "add", NEW, "--name", "New")
        await cli(serve, "agent", "grant", "agent01", NEW)
        await seen_within(agent, 0, lambda v: NEW in line_ids(v), "the granted line")
        revoked = await cli(serve, "agent", "revoke", "agent01", OLD)
        took = await seen_within(agent, revoked, lambda v: OLD not in line_ids(v), "revoke")
        assert took < PROPAGATION_LIMIT
        with pytest.raises(ApiError) as refused:
            await agent.choose_lines([old_id])
        assert refused.value.status == 403
    finally:
        await agent.aclose()


@pytest.fixture
def two_nodes(sandbox, tmp_path, pg_db):
    """Two serves on one PostgreSQL database and one sandbox Asterisk: each its own ARI
    app name (one app name per process, docs/decisions.md), web port and AGI port."""
    nodes = []
    for n in (1, 2):
        workdir = tmp_path / f"node{n}"
        workdir.mkdir()
        env = dict(os.environ)
        env.update(sandbox.env())
        env.update(
            ASTERISK_CUBE_DATA_DIR=str(workdir),
            ASTERISK_CUBE_CONFIG=str(workdir / "c.toml"),
            ASTERISK_CUBE_DATABASE_URL=pg_db,
            ASTERISK_CUBE_ARI_APP=f"asterisk-cube-node{n}",
            ASTERISK_CUBE_NODE_NAME=f"node{n}",  # two serves on one database: two nodes
            ASTERISK_CUBE_WEB_PORT=str(sandbox.web_port + n - 1),
            ASTERISK_CUBE_AGI_PORT=str(sandbox.agi_port + n - 1),
        )
        (workdir / "c.toml").write_text("")
        nodes.append(Serve(env, workdir))
    first = nodes[0]
    first.cli("db", "upgrade")
    first.cli("line", "add", OLD, "--name", "Old")
    for n in (1, 2):  # agent0n works on node n
        first.cli(
            "agent", "add", f"agent0{n}", "--endpoint", f"PJSIP/agent0{n}",
            "--password", PASSWORD, "--line", OLD,
        )  # fmt: skip
    started = []
    try:
        for node in nodes:
            node.start()
            started.append(node)
        yield nodes
    finally:  # also when the second one failed to start: leave nothing running
        codes = [(node.stop(), node) for node in started]
    for code, node in codes:
        assert code == 0, node.log()


async def test_two_serves_on_postgresql_see_cli_grants(two_nodes):
    agents = [AgentClient(node.url) for node in two_nodes]
    try:
        for n, agent in enumerate(agents, 1):
            await agent.login(f"agent0{n}", PASSWORD)
            assert NEW not in line_ids(await agent.start())
        await cli(two_nodes[0], "line", "add", NEW, "--name", "New")
        took = []
        for n, agent in enumerate(agents, 1):
            granted = await cli(two_nodes[0], "agent", "grant", f"agent0{n}", NEW)
            took.append(
                await seen_within(agent, granted, lambda v: NEW in line_ids(v), f"node {n}")
            )
            await agent.choose_lines([line_ids(await agent.view())[NEW]])  # was a 403
        print(f"\ngrants seen by the two serves {took[0]:.2f} s / {took[1]:.2f} s after commit")
        assert max(took) < PROPAGATION_LIMIT
    finally:
        for agent in agents:
            await agent.aclose()
