"""Issue #19: ``DELETE /bridges`` only for bridges that exist.

The load bench counted two ``DELETE /bridges/...`` per inbound call: ``release`` destroyed
the call's bridge and its consultation bridge, which exists only after a consult, so one
request per call went to Asterisk just to get a 404.
"""

from __future__ import annotations

from fakes.ari import FakeSupervisor, RecordingClient

from asterisk_cube.ari.inbound import InboundApp, call_bridge_id, consult_bridge_id
from asterisk_cube.ari.supervisor import AppSnapshot
from asterisk_cube.config import Settings


class NoDistributor:
    calls: dict = {}

    def leg_originated(self, call_id: int, channel_id: str) -> bool:
        return True


def app_with(client: RecordingClient) -> InboundApp:
    return InboundApp(Settings(), FakeSupervisor(client), NoDistributor(), ring_timeout=1)


async def test_release_of_a_call_without_consult_deletes_one_bridge():
    client = RecordingClient()
    app = app_with(client)
    await app._ensure_bridge(call_bridge_id(7), "mixing")  # what connect_agent creates
    await app.release(7, ["caller", "agent"])
    assert client.destroyed() == [call_bridge_id(7)]


async def test_release_after_a_consult_deletes_both_bridges_once():
    client = RecordingClient()
    app = app_with(client)
    await app._ensure_bridge(call_bridge_id(8), "mixing")
    await app._ensure_bridge(consult_bridge_id(8), "mixing")
    await app.release(8, ["caller", "agent"])
    await app.release(8, ["caller", "agent"])  # a second release finds nothing to delete
    assert sorted(client.destroyed()) == sorted([call_bridge_id(8), consult_bridge_id(8)])


async def test_bridges_found_after_a_reconnect_are_deleted_on_release():
    client = RecordingClient()
    app = app_with(client)
    app.distributor.recover = lambda channel_ids: None
    snapshot = AppSnapshot(channel_ids=(), bridge_ids=(call_bridge_id(9), consult_bridge_id(9)))
    await app.on_resync(snapshot, client)
    await app.release(9, [])
    assert sorted(client.destroyed()) == sorted([call_bridge_id(9), consult_bridge_id(9)])
