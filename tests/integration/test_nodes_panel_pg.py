"""Issue #14 item 3 on real parts: node a's panel shows the whole center. Two `serve`
on one PostgreSQL and one sandbox Asterisk; an agent works on node b, a supervisor
watches node a's panel: ``GET /api/panel`` there lists both nodes, b's agent with its
state as it changes (b's journal NOTIFYs, a re-reads off the loop) and its node, and
after ``kill -9`` of b, node b down and its agent logged out by the takeover."""

from __future__ import annotations

import pytest
from agent_client import AgentClient
from nodekit import AGENT_PASSWORD, lease_env, two_nodes
from support.polling import until
from test_nodes_pg import LINE

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


async def test_node_as_panel_shows_node_bs_agent_and_when_b_is_down(sandbox, pg_db, tmp_path):
    a, b = two_nodes(sandbox, pg_db, tmp_path, **lease_env(3))
    a.cli("line", "add", LINE, "--name", "Support")
    for name, role in (("agent01", "agent"), ("agent02", "agent"), ("boss", "supervisor")):
        a.cli(
            "agent", "add", name, "--endpoint", f"PJSIP/{name}", "--role", role,
            "--password", AGENT_PASSWORD, "--line", LINE,
        )  # fmt: skip
    a.cli("dialplan", "install")
    a.start()
    b.start()
    on_b, on_a, boss = AgentClient(b.url), AgentClient(a.url), AgentClient(a.url)
    try:
        await on_b.login("agent01", AGENT_PASSWORD)
        await on_b.start()
        await on_a.login("agent02", AGENT_PASSWORD)
        await on_a.start()
        await boss.login("boss", AGENT_PASSWORD)

        async def panel() -> dict:
            return await boss._get("/api/panel")

        async def agent(name: str) -> dict:
            return next(x for x in (await panel())["agents"].values() if x["username"] == name)

        async def shows(name: str, state: str, node: str) -> bool:
            item = await agent(name)
            return (item["state"], item.get("node")) == (state, node)

        await until(lambda: shows("agent01", "paused", "b"), 20, "b's agent on a's panel")
        assert await shows("agent02", "paused", "a")
        nodes = (await panel())["nodes"]
        assert {n: (v["live"], v["me"]) for n, v in nodes.items()} == {
            "a": (True, True),
            "b": (True, False),
        }
        await on_b.ready()  # a change on b reaches a's panel
        await until(lambda: shows("agent01", "ready", "b"), 20, "ready on a's panel")

        b.kill()
        await until(lambda: panel_node_down(boss), 30, "node b down on a's panel (lease 3 s)")
        await until(lambda: agent_state(boss, "agent01", "logged_out"), 20, "taken over")
    finally:
        for client in (on_b, on_a, boss):
            await client.aclose()
        assert a.stop() == 0, a.log()


async def panel_node_down(boss: AgentClient) -> bool:
    return (await boss._get("/api/panel"))["nodes"]["b"]["live"] is False


async def agent_state(boss: AgentClient, name: str, state: str) -> bool:
    agents = (await boss._get("/api/panel"))["agents"].values()
    return next(x for x in agents if x["username"] == name)["state"] == state
