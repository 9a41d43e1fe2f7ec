"""Issue #19: connecting a caller to the agent is one ``addChannel`` to the call's mixing
bridge (Asterisk moves the caller out of the line's holding bridge itself, proven on the
sandbox's Asterisk 22 by bench/queue_compare.py: 7 requests per call, every call bridged);
an Asterisk that refuses the move gets ``removeChannel`` first, as before."""

from __future__ import annotations

import asyncio

from fakes.ari import FakeSupervisor
from test_distributor_races import FixedClock, world  # noqa: F401  (world: a fixture)

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.inbound import InboundApp
from asterisk_cube.config import Settings
from asterisk_cube.events import EventHub


class BridgingAri:
    def __init__(self, refuse_moves: bool) -> None:
        self.app: InboundApp | None = None
        self.requests: list[tuple[str, str, str]] = []
        self.refuse_moves = refuse_moves
        self.held: set[str] = {"caller"}  # in the holding bridge
        outer = self

        class Channels:
            async def originate(self, channelId, appArgs, **kw):
                event = {
                    "type": "StasisStart",
                    "args": appArgs.split(","),
                    "channel": {"id": channelId},
                }
                asyncio.get_running_loop().call_soon(
                    lambda: asyncio.ensure_future(outer.app.on_event(event, outer))
                )

            async def hangup(self, channelId):
                outer.requests.append(("hangup", channelId, ""))

        class Bridges:
            async def createWithId(self, bridgeId, **kw):
                outer.requests.append(("create", bridgeId, ""))

            async def removeChannel(self, bridgeId, channel):
                outer.requests.append(("removeChannel", bridgeId, channel))
                outer.held.discard(channel)

            async def addChannel(self, bridgeId, channel):
                outer.requests.append(("addChannel", bridgeId, channel))
                if outer.refuse_moves and outer.held & set(channel.split(",")):
                    raise RuntimeError("409 Channel is in another bridge")

        self.channels = Channels()
        self.bridges = Bridges()


async def _connect(world, refuse_moves):  # noqa: F811
    sessions, _ann, _line = world
    ari = BridgingAri(refuse_moves)
    d = Distributor(sessions, EventHub(), None, FixedClock())
    app = InboundApp(Settings(), FakeSupervisor(ari), d, ring_timeout=2)
    ari.app = app
    agent = await app.connect_agent(1, "caller", "PJSIP/ann", tone=False)
    return ari, agent


async def test_the_caller_moves_to_the_call_bridge_in_one_request(world):  # noqa: F811
    ari, agent = await _connect(world, refuse_moves=False)
    bridging = [r for r in ari.requests if r[0] in ("addChannel", "removeChannel")]
    assert bridging == [("addChannel", "cube-call-1", f"caller,{agent}")]


async def test_an_asterisk_that_refuses_the_move_gets_remove_then_add(world):  # noqa: F811
    ari, agent = await _connect(world, refuse_moves=True)
    kinds = [r[0] for r in ari.requests if r[0] in ("addChannel", "removeChannel")]
    assert kinds == ["addChannel", "removeChannel", "addChannel"]
    assert ("hangup", agent, "") not in ari.requests  # connected: the agent's leg stays
