"""The power/predictive call's mixing bridge is made with the contact in it as soon as
the contact answers, so that the agent's answer costs one ARI request (F-D4's 2 s rule
on a starved CPU); every way out destroys it exactly once (issue #19 counted a second
``DELETE /bridges``) and leaves no bridge behind."""

import asyncio
from collections import Counter

import pytest
from fakes.ari import FakeSupervisor, RecordingClient
from support.dialer import dialer_world, make, ready, run_until, settled, statuses

from asterisk_cube.ari.outbound import OutboundApp
from asterisk_cube.config import Settings

pytestmark = pytest.mark.looptime


@pytest.fixture
def world(tmp_path):
    return dialer_world(tmp_path)


def per_call(tel) -> dict[int, list[tuple]]:
    calls: dict[int, list[tuple]] = {}
    for request in tel.requests:
        if request[0] == "play":  # keyed by channel, not call
            continue
        calls.setdefault(request[1], []).append(request)
    return calls


def assert_each_bridge_destroyed_once(tel) -> None:
    kinds = Counter((r[0], r[1]) for r in tel.requests if r[0] in ("create", "destroy"))
    made = {call for kind, call in kinds if kind == "create"}
    assert made and all(kinds["create", c] == kinds["destroy", c] == 1 for c in made), kinds
    assert not tel.bridges  # nothing left in "GET /bridges"


async def pause_when_dialing(tel, distributor, agent_id):
    """Power dials only for a ready agent: take it away once the contact rings."""
    while not tel.dialed:
        await asyncio.sleep(0.005)
    await distributor.pause(agent_id, "break")


@pytest.mark.parametrize("mode", ["power", "predictive"])
async def test_the_agents_answer_is_one_request_from_bridged(world, mode):
    sessions, agents = world
    phones = ["+4790000001", "+4790000002"]
    dialer, distributor, tel, cid = make(world, mode, phones, max_attempts=1)
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    await ready(distributor, agents[:1])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    assert statuses(sessions, cid) == ["done", "done"]
    for call, requests in per_call(tel).items():
        contact, agent = next(chans for c, chans in tel.bridged if c == call)
        assert requests == [
            ("create", call),  # made while the agent was taken and rung
            ("add", call, (contact,)),
            ("answered", call),
            ("add", call, (agent,)),  # the one request after the answer
            ("destroy", call),
        ]
    assert_each_bridge_destroyed_once(tel)


async def test_no_agent_in_time_the_message_plays_in_the_bridge_then_it_is_destroyed(world):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    tel.contacts["+4790000001"] = ("answer", 0.05, None)
    await ready(distributor, agents[:1])
    pauser = asyncio.create_task(pause_when_dialing(tel, distributor, agents[0]))
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    await pauser
    call = tel.requests[0][1]
    contact = tel.requests[1][2][0]
    assert tel.requests == [
        ("create", call),
        ("add", call, (contact,)),
        ("play", contact, True),  # the abandon message, to the contact in its bridge
        ("destroy", call),
    ]
    assert_each_bridge_destroyed_once(tel)


@pytest.mark.parametrize("how", ["silent_agent", "gone_waiting", "gone_ringing"])
async def test_every_unconnected_end_destroys_the_bridge_once(world, how):
    sessions, agents = world
    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], max_attempts=2)
    if how == "silent_agent":  # the phone does not answer by itself: abandoned
        tel.contacts["+4790000001"] = ("answer", 0.02, None)
        tel.silent_agents.add("PJSIP/agent1")
    elif how == "gone_waiting":  # the contact hangs up before any agent is free
        tel.contacts["+4790000001"] = ("answer", 0.02, 0.1)
    else:  # the contact hangs up while the agent's phone rings
        tel.contacts["+4790000001"] = ("answer", 0.02, 0.05)
        tel.silent_agents.add("PJSIP/agent1")
    await ready(distributor, agents[:1])
    pauser = None
    if how == "gone_waiting":
        pauser = asyncio.create_task(pause_when_dialing(tel, distributor, agents[0]))
    await run_until(
        dialer, lambda: statuses(sessions, cid) == ["not_answered"] and not dialer.lines
    )
    if pauser is not None:
        await pauser
    assert not tel.bridged
    assert_each_bridge_destroyed_once(tel)


async def test_stopping_destroys_the_bridge_of_a_contact_waiting_and_keeps_a_talking_one(world):
    _sessions, agents = world
    phones = ["+4790000001", "+4790000002"]
    dialer, distributor, tel, _cid = make(world, "power", phones, max_attempts=1)
    tel.contacts[phones[0]] = ("answer", 0.01, 100.0)  # talks for long
    tel.contacts[phones[1]] = ("answer", 0.01, 100.0)  # waits: its agent's phone is silent
    tel.silent_agents.add("PJSIP/agent2")
    await ready(distributor, agents[:2])
    task = asyncio.create_task(dialer.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (tel.bridged and len(tel.bridges) == 2):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.001)
    ((talking, _chans),) = tel.bridged
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert list(tel.bridges) == [talking]  # the talking call goes on in its bridge


async def test_the_outbound_app_joins_with_one_request_and_deletes_once():
    """``open_bridge`` makes the bridge with the contact (two requests), ``join`` is the
    one request after the agent's answer; every path that ends a call may call
    ``end_call``: Asterisk gets one ``DELETE`` per bridge made, none for a call without."""
    client = RecordingClient()
    app = OutboundApp(Settings(), FakeSupervisor(client))
    await app.bridge(6, ["cube-d-p", "cube-da-p"])  # preview: both legs at once
    await app.end_call(6)
    await app.end_call(6)
    assert client.destroyed() == ["cube-dial-6"]
    await app.open_bridge(7, ["cube-d-a"])
    made = len(client.calls)
    await app.join(7, "cube-da-b")
    assert [op for op, _ in client.calls[made:]] == ["bridges.addChannel"]
    assert client.calls[-1][1] == {"bridgeId": "cube-dial-7", "channel": "cube-da-b"}
    await app.end_call(7)
    await app.end_call(7)
    await app.end_call(8)
    assert client.destroyed() == ["cube-dial-6", "cube-dial-7"]
