"""The SSE view stream, driven directly (no HTTP): full view first, one view per burst of
changes for this agent, other agents' changes ignored, heartbeats, end on hub close."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.desk import demo_desk

from asterisk_cube.acd.contract import AgentView, AgentViewChanged, DeskLineCount, LineCount
from asterisk_cube.events import EventHub
from asterisk_cube.web import push


def _request(stopping: bool = False):
    server = SimpleNamespace(should_exit=stopping)
    return SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(cube=SimpleNamespace(web=server)))
    )


def _parse(chunk: str):
    event = None
    data = []
    for line in chunk.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    return event, json.loads("\n".join(data)) if data else None


async def _next(gen, timeout=2.0):
    return await asyncio.wait_for(gen.__anext__(), timeout)


async def test_first_the_full_view_then_changes_for_this_agent_only():
    hub = EventHub()
    desk = demo_desk(hub, [(1, "kari", "Kari"), (2, "ola", "Ola")])
    gen = push.view_stream(_request(), desk, hub, 1, render=AgentView.to_dict, heartbeat=60)
    assert (await _next(gen)).startswith("retry: ")
    event, view = _parse(await _next(gen))
    assert event == "view" and view["agent_id"] == 1 and view["state"] == "logged_out"
    assert len(hub.subscribers) == 1

    hub.publish(AgentViewChanged(agent_id=2))  # not ours
    pending = asyncio.ensure_future(_next(gen, timeout=5))
    await asyncio.sleep(0.05)
    assert not pending.done()

    await desk.login(1)  # publishes for agent 1
    await desk.choose_lines(1, [1])  # publishes for everybody: coalesced with the above
    event, view = _parse(await pending)
    assert event == "view" and view["state"] == "paused"
    assert [line["chosen"] for line in view["lines"]] == [True, False, False]

    hub.close()
    try:
        await _next(gen)
        raise AssertionError("stream should end when the hub closes")
    except StopAsyncIteration:
        pass
    assert hub.subscribers == ()


async def test_heartbeat_comments_while_idle(monkeypatch):
    monkeypatch.setattr(push, "_SHUTDOWN_CHECK", 0.02)
    hub = EventHub()
    desk = demo_desk(hub, [(1, "kari", "Kari")])
    gen = push.view_stream(_request(), desk, hub, 1, render=AgentView.to_dict, heartbeat=0.05)
    await _next(gen)
    await _next(gen)
    assert await _next(gen) == ": ping\n\n"
    await gen.aclose()
    assert hub.subscribers == ()  # closing the stream unsubscribes


async def test_stream_ends_when_the_server_stops(monkeypatch):
    monkeypatch.setattr(push, "_SHUTDOWN_CHECK", 0.02)
    hub = EventHub()
    desk = demo_desk(hub, [(1, "kari", "Kari")])
    request = _request()
    gen = push.view_stream(request, desk, hub, 1, render=AgentView.to_dict, heartbeat=60)
    await _next(gen)
    await _next(gen)
    request.app.state.cube.web.should_exit = True
    chunks = [c async for c in gen]
    assert chunks == []
    assert hub.subscribers == ()


async def test_unknown_agent_gets_a_refusal_event():
    hub = EventHub()
    desk = demo_desk(hub, [(1, "kari", "Kari")])
    gen = push.view_stream(_request(), desk, hub, 99, render=AgentView.to_dict)
    await _next(gen)
    event, body = _parse(await _next(gen))
    assert event == "refused" and body["error"] == "not_found"
    assert [c async for c in gen] == []


def test_sse_message_splits_lines():
    assert push.sse_message("view", {"a": "x\ny"}) == 'event: view\ndata: {"a":"x\\ny"}\n\n'


async def test_a_queue_change_sends_the_count_not_the_view():
    hub = EventHub()
    desk = demo_desk(hub, [(1, "kari", "Kari"), (2, "ola", "Ola")])
    gen = push.view_stream(_request(), desk, hub, 1, render=AgentView.to_dict, heartbeat=60)
    await _next(gen)  # retry
    await _next(gen)  # the full view
    views = []
    real_view = desk.view

    async def counted(agent_id):
        views.append(agent_id)
        return await real_view(agent_id)

    desk.view = counted
    hub.publish(DeskLineCount(agent_id=2, count=LineCount(1, 5, 3.0)))  # not ours
    hub.publish(DeskLineCount(agent_id=1, count=LineCount(1, 1, 2.0)))
    hub.publish(DeskLineCount(agent_id=1, count=LineCount(1, 2, 4.0)))  # the last one wins
    event, data = _parse(await _next(gen))
    assert event == "count" and data == {"line_id": 1, "waiting": 2, "longest_wait_s": 4.0}
    assert views == []  # no view was built for a count
    hub.close()
