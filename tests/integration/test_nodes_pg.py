"""Nodes on real parts (issue #14), asserted from outside too (SIPp, ARI ``GET
/channels``). Two `serve` on one PostgreSQL and one sandbox Asterisk, same host: node b
starting leaves node a's live call and busy agent alone (both used to be named after the
host, and b ended a's call), and a serve named like the live node a refuses to start.
One `serve` restarted: the agent it left ready is paused until they press Ready."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from agent_client import AgentClient
from cubeproc import CLI
from nodekit import (
    AGENT_PASSWORD,
    agent_row,
    ari_channels,
    call_row,
    second_node_env,
    two_nodes,
    wait_log,
    wait_view,
)
from nodekit import node as node_serve
from sippkit import caller, phone
from support.polling import until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# the names other node tests imported from here (now in tests/nodekit.py)
__all__ = ["AGENT_PASSWORD", "LINE", "agent_row", "node_serve", "second_node_env"]
LINE = "4721000011"


async def test_second_node_leaves_the_first_ones_call_alone(sandbox, pg_db, tmp_path):
    a, b = two_nodes(sandbox, pg_db, tmp_path)
    a.cli("line", "add", LINE, "--name", "Support", "--offer-timeout", "10")
    a.cli(
        "agent", "add", "agent01", "--endpoint", "PJSIP/agent01",
        "--password", AGENT_PASSWORD, "--line", LINE,
    )  # fmt: skip
    a.cli("dialplan", "install")
    a.start()
    agent = AgentClient(a.url)
    try:
        await agent.login("agent01", AGENT_PASSWORD)
        view = await agent.start()
        await agent.choose_lines([ln["line_id"] for ln in view["lines"]])
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=100):
            call = caller(sandbox, LINE, tmp_path / "c1", caller_id="91000001", hold_ms=25000)
            call.start()
            await agent.ready()
            view = await wait_view(agent, lambda v: v["offer"], "the offer")
            call_id = view["offer"]["call_id"]
            await agent.accept(call_id)
            await wait_view(
                agent, lambda v: v["call"] and v["call"]["state"] == "connected", "connected"
            )
            before = await ari_channels(sandbox)
            assert len(before) == 2  # the caller and the agent's leg
            # the rows reach the database through the write-behind journal (<= 250 ms)
            await until(lambda: call_row(pg_db, call_id) == ("connected", None, "a"), 5, "row")
            await until(lambda: agent_row(pg_db, "agent01") == ("busy", "a"), 5, "agent row")

            b.start()  # node b: same host, same database, same Asterisk
            wait_log(b, "acd_recovered")

            assert call_row(pg_db, call_id) == ("connected", None, "a")
            assert agent_row(pg_db, "agent01") == ("busy", "a")  # b did not recover a's agent
            assert await ari_channels(sandbox) == before
            view = await agent.view()
            assert view["call"]["state"] == "connected" and view["call"]["call_id"] == call_id

            # a third serve named "a" while a lives: one clear line, exit code 1
            same = subprocess.run(
                [*CLI, "serve"],
                env={**b.env, "ASTERISK_CUBE_NODE_NAME": "a"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert same.returncode == 1, same.stderr
            error = same.stderr.strip().splitlines()[-1]
            assert error.startswith(
                f"Error: node name 'a' is in use by a live serve (pid {a.proc.pid}"
            )

            result = await asyncio.to_thread(call.wait, 60)  # the caller hung up itself
            assert result.ok, result.summary()
        await wait_view(agent, lambda v: v["call"] and v["call"]["state"] == "ended", "ended")
        assert call_row(pg_db, call_id)[0] == "ended"
        assert call_row(pg_db, call_id)[1] != "ended_during_restart"
    finally:
        await agent.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
    assert "node_lease_released" in a.log()


def waiting(view, did):
    return next(ln["waiting"] for ln in view["lines"] if ln["did"] == did)


async def test_an_agent_ready_when_serve_stopped_is_paused_after_the_restart(
    sandbox, pg_db, tmp_path
):
    """Issue #14 item 4: after a restart the agent left ready gets no call until they
    press Ready (paused, reason "restart"); the caller waits meanwhile."""
    a = node_serve(sandbox, tmp_path / "a", pg_db, "a")
    a.cli("line", "add", LINE, "--name", "Support", "--offer-timeout", "10")
    a.cli(
        "agent", "add", "agent01", "--endpoint", "PJSIP/agent01",
        "--password", AGENT_PASSWORD, "--line", LINE,
    )  # fmt: skip
    a.cli("dialplan", "install")
    a.start()
    agent = AgentClient(a.url)
    try:
        await agent.login("agent01", AGENT_PASSWORD)
        view = await agent.start()
        await agent.choose_lines([ln["line_id"] for ln in view["lines"]])
        assert (await agent.ready())["state"] == "ready"
        assert a.stop() == 0, a.log()
        a.start()
        view = await agent.view()  # the desk's session survives the restart
        assert (view["state"], view["pause_reason"]) == ("paused", "restart")
        assert agent_row(pg_db, "agent01") == ("paused", "a")
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=100) as ph:
            call = caller(sandbox, LINE, tmp_path / "c1", caller_id="91000002", hold_ms=3000)
            call.start()
            view = await wait_view(agent, lambda v: waiting(v, LINE) == 1, "the caller waits")
            assert view["offer"] is None and view["state"] == "paused"
            await agent.ready()  # back at the desk
            view = await wait_view(agent, lambda v: v["offer"], "the offer")
            await agent.accept(view["offer"]["call_id"])
            await wait_view(
                agent, lambda v: v["call"] and v["call"]["state"] == "connected", "connected"
            )
            result = await asyncio.to_thread(call.wait, 60)
            assert result.ok, result.summary()
        assert ph.stop().successful == 1  # the phone rang once, after Ready
    finally:
        await agent.aclose()
        assert a.stop() == 0, a.log()
