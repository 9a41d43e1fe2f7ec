"""The test agent client's answering-service calls (script, forward, connect/cancel, note)
against the desktop on a real uvicorn with the fake distributor; forward status over SSE."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_client import AgentClient, ApiError
from fakes.answering import OWN_NUMBER, TARGETS, add_client, attach
from fakes.web import LiveDesktop, demo_for


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveDesktop(tmp_path_factory.mktemp("live"), heartbeat=0.5)
    client = add_client(server.sessions, None)

    def factory(hub, ids):
        desk = demo_for(hub, ids)
        attach(desk, client)
        desk.agents[ids["kari"]].permitted.append(client.line_id)
        return desk

    server.desk_factory = factory
    server.client_ids = client
    server.start()
    yield server
    server.stop()


async def _call(live: LiveDesktop, fn, *args):
    return await asyncio.to_thread(live.call, fn, *args)


def forward_is(status, attempt=None):
    def check(view):
        fwd = (view.get("call") or {}).get("forward")
        return fwd and fwd["status"] == status and attempt in (None, fwd["attempt"])

    return check


async def test_forward_and_note_over_http_and_sse(live):
    line = live.client_ids.line_id
    async with AgentClient(live.url) as agent:
        await agent.login("kari", "kari-secret-1")
        await agent.start()
        await agent.choose_lines([line])
        await agent.ready()
        call = await _call(live, live.desk.incoming_call, line, "+4791234567")
        await agent.accept(call)
        script = await agent.script(call)
        assert script["client"] == "Fjord Regnskap AS" and script["tone"] == "formal"

        async with agent.events() as events:
            view = await agent.forward(call)
            assert view["call"]["forward"]["target"] == TARGETS[0]
            await _call(live, live.desk.forward_outcome, call, False)
            view = await events.wait_for(forward_is("ringing", attempt=2))
            assert view["call"]["forward"]["target"] == TARGETS[1]
            await _call(live, live.desk.forward_outcome, call, True)
            await events.wait_for(forward_is("announcing"))
        view = await agent.forward_cancel(call)
        assert view["call"]["forward"]["status"] == "failed"

        with pytest.raises(ApiError) as refused:
            await agent.take_note(call, "Call me", callback_number=OWN_NUMBER)
        assert (refused.value.status, refused.value.field) == (400, "callback_number")
        view = await agent.take_note(
            call,
            "Call me about the invoice",
            caller_name="Per",
            callback_number="+4741234567",
            employee_id=live.client_ids.accounting,
        )
        assert view["call"]["notes"] == 1
        with pytest.raises(ApiError) as refused:
            await agent.script(call + 1000)
        assert refused.value.status == 404
