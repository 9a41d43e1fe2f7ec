"""The agent's node side of a cross-node leg (ari/crossnode.py, issue #14): the trunk leg
rings the phone, the answered phone is bridged with it, and whichever leaves, the other is
hung up. The live proof is tests/integration/test_crossnode_trunk.py."""

from __future__ import annotations

from fakes.ari import FakeSupervisor, RecordingClient

from asterisk_cube.ari.crossnode import CrossNodeApp, bridge_id
from asterisk_cube.ari.outbound import AUTO_ANSWER
from asterisk_cube.ari.router import StasisRouter
from asterisk_cube.config import Settings


def start(channel: str, *args: str) -> dict:
    caller = {"name": "", "number": "91000001"}
    return {"type": "StasisStart", "args": list(args), "channel": {"id": channel, "caller": caller}}


def end(channel: str) -> dict:
    return {"type": "StasisEnd", "channel": {"id": channel}}


async def arrive(app: CrossNodeApp, client: RecordingClient) -> str:
    await app.on_event(start("trunk-1", "crossnode", "42", "PJSIP/ola"), client)
    (originate,) = [p for op, p in client.calls if op == "channels.originate"]
    assert originate["endpoint"] == "PJSIP/ola"
    assert originate["appArgs"] == "crossnode-phone,trunk-1"
    assert originate["callerId"] == '"91000001" <91000001>'
    return str(originate["channelId"])


async def test_the_answered_phone_is_bridged_with_the_trunk_leg():
    client = RecordingClient()
    app = CrossNodeApp(Settings(), FakeSupervisor(client))
    phone = await arrive(app, client)
    assert ("channels.ring", {"channelId": "trunk-1"}) in client.calls
    await app.on_event(start(phone, "crossnode-phone", "trunk-1"), client)
    ops = [op for op, _ in client.calls]
    assert ops[-3:] == ["channels.answer", "bridges.createWithId", "bridges.addChannel"]
    assert client.calls[-1][1] == {"bridgeId": bridge_id("trunk-1"), "channel": f"trunk-1,{phone}"}


async def test_a_hang_up_on_either_side_ends_the_other_leg():
    for leaving in ("trunk", "phone"):
        client = RecordingClient()
        app = CrossNodeApp(Settings(), FakeSupervisor(client))
        phone = await arrive(app, client)
        await app.on_event(start(phone, "crossnode-phone", "trunk-1"), client)
        gone, other = ("trunk-1", phone) if leaving == "trunk" else (phone, "trunk-1")
        await app.on_event(end(gone), client)
        await app.on_event({"type": "ChannelDestroyed", "channel": {"id": gone}}, client)
        hangups = [p["channelId"] for op, p in client.calls if op == "channels.hangup"]
        assert hangups == [other]
        assert client.destroyed() == [bridge_id("trunk-1")]
        assert len(app.relays) == 0


async def test_a_phone_that_never_answers_ends_the_trunk_leg():
    client = RecordingClient()
    app = CrossNodeApp(Settings(), FakeSupervisor(client))
    phone = await arrive(app, client)
    await app.on_event({"type": "ChannelDestroyed", "channel": {"id": phone}}, client)
    assert [p["channelId"] for op, p in client.calls if op == "channels.hangup"] == ["trunk-1"]


async def test_a_dialer_agent_leg_rings_the_phone_with_auto_answer():
    client = RecordingClient()
    app = CrossNodeApp(Settings(), FakeSupervisor(client))
    await app.on_event(start("trunk-1", "crossnode", "42", "PJSIP/ola", "1"), client)
    (originate,) = [p for op, p in client.calls if op == "channels.originate"]
    assert originate["variables"] == AUTO_ANSWER
    plain = RecordingClient()
    app = CrossNodeApp(Settings(), FakeSupervisor(plain))
    await app.on_event(start("trunk-2", "crossnode", "43", "PJSIP/ola", ""), plain)
    (originate,) = [p for op, p in plain.calls if op == "channels.originate"]
    assert "variables" not in originate


async def test_the_router_sends_trunk_legs_to_the_crossnode_app():
    class App:
        def __init__(self):
            self.events = []

        async def on_event(self, event, client):
            self.events.append(tuple(event.get("args", ())))

    inbound, outbound, crossnode = App(), App(), App()
    router = StasisRouter(inbound, outbound, None, crossnode)
    await router.on_event(start("t", "crossnode", "42", "PJSIP/ola"), None)
    await router.on_event(start("p", "crossnode-phone", "t"), None)
    await router.on_event(start("c", "inbound", "1"), None)
    await router.on_event({"type": "ChannelDestroyed"}, None)
    assert crossnode.events == [("crossnode", "42", "PJSIP/ola"), ("crossnode-phone", "t"), ()]
    assert inbound.events == [("inbound", "1"), ()]
