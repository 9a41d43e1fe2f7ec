"""The test agent client against the desktop served by a real uvicorn (loopback only):
login, every action, and views pushed over SSE when the fake distributor changes things."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_client import AgentClient, ApiError
from fakes.web import LiveDesktop


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveDesktop(tmp_path_factory.mktemp("live"), heartbeat=0.5).start()
    yield server
    server.stop()


async def _call(live: LiveDesktop, fn, *args):
    return await asyncio.to_thread(live.call, fn, *args)


async def test_a_day_at_the_desk_over_http_and_sse(live):
    desk = live.desk
    async with AgentClient(live.url) as kari:
        agent = await kari.login("kari", "kari-secret-1")
        assert agent["username"] == "kari" and agent["role"] == "agent"
        async with kari.events() as events:
            first = await events.next()
            assert first["state"] == "logged_out"
            await kari.start()
            await kari.choose_lines([1, 2])
            view = await kari.ready()
            assert view["state"] == "ready"
            await events.wait_for(lambda v: v["state"] == "ready")

            call = await _call(live, desk.incoming_call, 1, "+4791234567")
            view = await events.wait_for(lambda v: v["offer"] is not None)
            assert view["offer"]["call_id"] == call and view["state"] == "offered"

            view = await kari.accept(call)
            assert view["call"]["caller"] == "+4791234567"
            contacts = await kari.search_contacts("Nordmann")
            view = await kari.attach_contact(call, contacts[0]["contact_id"])
            topic = view["call"]["categories"][0]["topics"][0]["topic_id"]
            await kari.register_enquiry(call, [topic], "ok")
            view = await kari.hangup(call)
            assert view["state"] == "wrap_up"
            await kari.extend_wrap_up(10)
            await kari.close_call(call)
            view = await kari.finish_wrap_up()
            assert view["state"] == "ready" and view["call"] is None

            # a caller giving up in the queue becomes a missed call, pushed
            await kari.pause("break")
            lost = await _call(live, desk.incoming_call, 2, "+4798765432")
            view = await events.wait_for(lambda v: v["lines"][1]["waiting"] == 1)
            await _call(live, desk.caller_hangs_up, lost)
            view = await events.wait_for(lambda v: v["missed"])
            missed_id = view["missed"][0]["missed_id"]
            view = await kari.callback_missed(missed_id)
            assert view["state"] == "busy" and view["call"]["caller"] == "+4798765432"
            view = await kari.mark_missed_processed(missed_id)
            assert view["missed"] == []

        with pytest.raises(ApiError) as err:
            await kari.accept(999999)
        assert err.value.status == 404 and err.value.reason == "not_found"
        with pytest.raises(ApiError) as err:
            await kari.logout()  # still on the callback
        assert err.value.status == 409


async def test_reconnect_gets_the_full_view_and_idle_streams_get_heartbeats(live):
    async with AgentClient(live.url) as ola:
        await ola.login("ola", "ola-secret-12")
        async with ola.events() as events:
            first = await events.next()
            assert events.response.headers["content-type"].startswith("text/event-stream")
            assert await events.raw_line(5) == ": ping"  # heartbeat every 0.5 s here
        async with ola.events() as events:  # a new connection starts with a full view
            again = await events.next()
            assert again["agent_id"] == first["agent_id"] and again["lines"]


async def test_events_need_a_login(live):
    async with AgentClient(live.url) as anon:
        with pytest.raises(ApiError) as err:
            async with anon.events():
                pass
        assert err.value.status == 401
