"""Issue #14: the desk of an agent logged in on node a, opened on node b, is refused
with 409 ``other_node`` naming a (as the login is), on every desk route: the event
stream, ``/api/me``, a desk action, the desk page. Node b started before the agent
logged in on a, so b holds a logged-out copy of the agent and used to serve it: an
empty "logged out" stream on b while the agent worked on a."""

from __future__ import annotations

import pytest
from agent_client import AgentClient, ApiError
from nodekit import AGENT_PASSWORD, agent_row, two_nodes
from support.polling import until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LINE = "4721000031"


def refused_naming_a(error: ApiError) -> None:
    assert (error.status, error.reason) == (409, "other_node"), error
    assert "node a" in error.message, error.message


async def test_a_desk_on_the_other_node_is_refused_naming_the_owner(sandbox, pg_db, tmp_path):
    a, b = two_nodes(sandbox, pg_db, tmp_path)
    a.cli("line", "add", LINE, "--name", "Support")
    a.cli(
        "agent", "add", "agent01", "--endpoint", "PJSIP/agent01",
        "--password", AGENT_PASSWORD, "--line", LINE,
    )  # fmt: skip
    a.start()
    b.start()  # b loads agent01 logged out
    on_a, on_b = AgentClient(a.url), AgentClient(b.url)
    try:
        await on_a.login("agent01", AGENT_PASSWORD)
        await on_a.start()  # agent01 works on a now
        await on_b.login("agent01", AGENT_PASSWORD)  # the web session: anywhere
        with pytest.raises(ApiError) as refused:
            async with on_b.events():
                pass
        refused_naming_a(refused.value)
        with pytest.raises(ApiError) as refused:
            await on_b.view()
        refused_naming_a(refused.value)
        with pytest.raises(ApiError) as refused:
            await on_b.choose_lines([])
        refused_naming_a(refused.value)
        page = await on_b.request("GET", "/desk")
        assert page.status_code == 409, page.text
        assert (await on_a.view())["state"] == "paused"  # a's desk goes on

        await on_a.end()  # logged out on a: b's desk may take the agent
        # once a's write-behind journal wrote it (<= 250 ms)
        await until(lambda: agent_row(pg_db, "agent01") == ("logged_out", "a"), 5, "logout")
        async with on_b.events() as events:
            view = await events.next()
        assert view["state"] == "logged_out"
        assert (await on_b.start())["state"] == "paused"
    finally:
        for client in (on_a, on_b):
            await client.aclose()
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()
