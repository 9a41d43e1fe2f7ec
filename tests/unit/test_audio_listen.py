"""Listen sessions without Asterisk (audio/listen.py): refusals and clean ends. The real
topology and audio are proven on the sandbox (tests/integration/test_audio_live.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from asterisk_cube.audio.listen import CallLegs, Listening, ListenRefused


class FakeAri:
    def __init__(self, answer: bool = True):
        self.answer = answer
        self.hung_up: list[str] = []
        self.listening: Listening | None = None
        self.bridges_made: list[str] = []
        self.destroyed: list[str] = []
        self.channels = SimpleNamespace(
            originate=self.originate, hangup=self.hangup, snoopChannelWithId=self.snoop
        )
        self.bridges = SimpleNamespace(
            createWithId=self.create, addChannel=self.add, destroy=self.destroy
        )

    async def originate(self, **kw):
        loop = asyncio.get_running_loop()
        if self.answer:
            loop.call_soon(self.listening.on_stasis_start, kw["channelId"])
        else:  # rings out: destroyed without entering Stasis
            loop.call_soon(self.listening.channel_gone, kw["channelId"], asyncio.ensure_future)

    async def snoop(self, **kw):
        asyncio.get_running_loop().call_soon(self.listening.on_stasis_start, kw["snoopId"])

    async def hangup(self, channelId):
        self.hung_up.append(channelId)

    async def create(self, bridgeId, **kw):
        self.bridges_made.append(bridgeId)

    async def add(self, **kw):
        return None

    async def destroy(self, bridgeId):
        self.destroyed.append(bridgeId)


def make(answer=True, connected=True):
    ari = FakeAri(answer)
    ended = []
    legs = {7: CallLegs("caller-ch", "agent-ch")} if connected else {}
    listening = Listening(lambda: ari, "app", legs.get, on_end=ended.append, ring_timeout=1)
    ari.listening = listening
    return listening, ari, ended


async def test_a_call_that_is_not_connected_is_refused_before_ringing():
    listening, ari, ended = make(connected=False)
    with pytest.raises(ListenRefused) as refused:
        await listening.start(7, "listen", supervisor="boss", supervisor_id=1, endpoint="PJSIP/b")
    assert refused.value.reason == "illegal_state"
    assert ari.hung_up == [] and ended == []
    with pytest.raises(ListenRefused) as refused:
        await listening.start(7, "spy", supervisor="boss", supervisor_id=1, endpoint="PJSIP/b")
    assert refused.value.reason == "invalid"


async def test_a_phone_that_does_not_answer_is_refused_and_the_session_ends():
    listening, ari, ended = make(answer=False)
    with pytest.raises(ListenRefused) as refused:
        await listening.start(7, "listen", supervisor="boss", supervisor_id=1, endpoint="PJSIP/b")
    assert refused.value.reason == "failed"
    assert listening.sessions == {} and listening.session_of("boss") is None
    (session,) = ended
    assert session.end_reason == "failed" and ari.hung_up == [session.sup_channel]


async def test_the_session_ends_with_the_call_and_leaves_nothing():
    listening, ari, ended = make()
    session = await listening.start(
        7, "whisper", supervisor="boss", supervisor_id=1, endpoint="PJSIP/b"
    )
    snoop, bridge = session.snoop_channel, session.bridge_id
    assert snoop.startswith("cube-snoop-") and ari.bridges_made == [bridge]
    listening.channel_gone("agent-ch", asyncio.ensure_future)  # the agent's leg left
    await session.done.wait()
    assert ended == [session] and session.end_reason == "call_ended"
    assert set(ari.hung_up) == {snoop, session.sup_channel} and ari.destroyed == [bridge]
    assert listening.sessions == {}
