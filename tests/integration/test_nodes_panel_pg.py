"""Issue #14 item 3 on real parts: node a's panel shows the whole center. Two `serve`
on one PostgreSQL and one sandbox Asterisk; an agent works on node b, a supervisor
watches node a's panel: ``GET /api/panel`` there lists both nodes, b's agent with its
state as it changes (b's journal NOTIFYs, a re-reads off the loop) and its node, and
after ``kill -9`` of b, node b down and its agent logged out by the takeover."""

from __future__ import annotations

import httpx
import pytest
from agent_client import AgentClient
from nodekit import AGENT_PASSWORD, lease_env, two_nodes
from sippkit import phone
from support.polling import until
from test_nodes_pg import LINE

from asterisk_cube.sandbox import PASSWORD as ARI_PASSWORD
from asterisk_cube.sandbox import USERNAME as ARI_USER

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


HOLD = "[nodes2-hold]\nexten => hold,1,Answer()\n same => n,Wait(60)\n"


async def test_node_as_panel_shows_the_phone_of_node_bs_agent(
    sandbox, pg_db, tmp_path, test_dialplan
):
    """Issue #14: a's panel shows the phone state of b's agent (registered, in use) as
    b's Asterisk reports it to b: b writes it on the agent's status row and NOTIFYs, a
    re-reads. Compared with b's own panel, which takes it from its AMI monitor."""
    test_dialplan(HOLD)  # a call the phone takes and holds: in use
    a, b = two_nodes(sandbox, pg_db, tmp_path)
    a.cli(
        "agent", "add", "agent01", "--endpoint", "PJSIP/agent01",
        "--password", AGENT_PASSWORD,
    )  # fmt: skip
    a.cli("agent", "add", "boss", "--role", "supervisor", "--password", AGENT_PASSWORD)
    b.start()
    on_b, boss_a, boss_b = AgentClient(b.url), AgentClient(a.url), AgentClient(b.url)
    try:
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "p1", answer_ms=100):
            await on_b.login("agent01", AGENT_PASSWORD)
            await on_b.start()
            # a starts after: it holds no copy of b's agent (nor its phone from its own
            # AMI, which on this shared Asterisk would see it); what it shows is b's row
            a.start()
            await boss_a.login("boss", AGENT_PASSWORD)
            await boss_b.login("boss", AGENT_PASSWORD)

            async def device(boss: AgentClient) -> str | None:
                agents = (await boss._get("/api/panel"))["agents"].values()
                return next(x for x in agents if x["username"] == "agent01").get("device")

            async def both_show(state: str) -> bool:
                return await device(boss_b) == state and await device(boss_a) == state

            on_b_now = await until(lambda: device(boss_b), 20, "b's own panel: the phone")
            await until(lambda: both_show(on_b_now), 20, f"a's panel: {on_b_now}")
            async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
                resp = await ari.post(
                    f"{sandbox.ari_url}/ari/channels",
                    params={"endpoint": "PJSIP/agent01", "context": "nodes2-hold",
                            "extension": "hold", "priority": "1"},
                )  # fmt: skip
                resp.raise_for_status()
                await until(lambda: both_show("inuse"), 20, "in use on both panels")
                resp = await ari.delete(f"{sandbox.ari_url}/ari/channels/{resp.json()['id']}")
                assert resp.status_code == 204, resp.text
            await until(lambda: both_show(on_b_now), 20, "free again on both panels")
    finally:
        for client in (on_b, boss_a, boss_b):
            await client.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
