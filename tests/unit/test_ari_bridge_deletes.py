"""Issue #19: ``DELETE /bridges`` only for bridges that exist.

The load bench counted two ``DELETE /bridges/...`` per inbound call: ``release`` destroyed
the call's bridge and its consultation bridge, which exists only after a consult, so one
request per call went to Asterisk just to get a 404.
"""

from __future__ import annotations

import asyncio
from typing import Any

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


class GatedCreateClient(RecordingClient):
    """``bridges.createWithId`` waits for ``gate``: a create still in flight at Asterisk."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        record = self.bridges

        class Bridges:
            def __getattr__(self, op: str) -> Any:
                return getattr(record, op)

            async def createWithId(self_, **params: Any) -> None:
                await self.gate.wait()
                self.calls.append(("bridges.createWithId", params))

        self.bridges = Bridges()


async def test_a_release_during_the_bridge_create_deletes_it_after_the_create():
    """A second fresh-clone CI run left a call bridge in Asterisk (every later "nothing
    left" check failed on it): the caller hung up while the call's bridge was being
    created. The release must delete that bridge, and only once Asterisk has created it
    (a DELETE that overtakes the create gets a 404 and the bridge stays)."""
    client = GatedCreateClient()
    app = app_with(client)
    creating = asyncio.create_task(app._ensure_bridge(call_bridge_id(10), "mixing"))
    await asyncio.sleep(0)  # the create is in flight
    releasing = asyncio.create_task(app.release(10, ["caller", "agent"]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert client.destroyed() == [], "DELETE sent before Asterisk created the bridge"
    client.gate.set()
    await asyncio.gather(creating, releasing)
    ops = [op for op, p in client.calls if p.get("bridgeId") == call_bridge_id(10)]
    assert ops == ["bridges.createWithId", "bridges.destroy"]
