"""One Stasis handler routes to the inbound and the outbound app (ari/router.py)."""

from asterisk_cube.ari.router import StasisRouter
from asterisk_cube.ari.supervisor import AppSnapshot


class App:
    def __init__(self):
        self.events = []
        self.resynced = []

    async def on_event(self, event, client):
        self.events.append((event["type"], tuple(event.get("args", ()))))

    async def on_resync(self, snapshot, client):
        self.resynced.append(snapshot)


async def test_stasis_start_by_first_argument_other_events_to_both():
    inbound, outbound = App(), App()
    router = StasisRouter(inbound, outbound)
    for args in (
        ["inbound", "1"],
        ["service", "3", "1", "open"],
        ["agent", "7"],
        ["cb-agent", "8"],
    ):
        await router.on_event({"type": "StasisStart", "args": args}, None)
    for args in (["dial", "9"], ["dial-agent", "9"], ["dial-amd", "9", "HUMAN", "x"]):
        await router.on_event({"type": "StasisStart", "args": args}, None)
    await router.on_event({"type": "StasisStart", "args": []}, None)  # not ours: inbound
    await router.on_event({"type": "ChannelDestroyed"}, None)
    assert [a[0] for _, a in inbound.events[:4]] == ["inbound", "service", "agent", "cb-agent"]
    assert [a[0] for _, a in outbound.events[:3]] == ["dial", "dial-agent", "dial-amd"]
    assert inbound.events[4:] == [("StasisStart", ()), ("ChannelDestroyed", ())]
    assert outbound.events[3:] == [("ChannelDestroyed", ())]
    snap = AppSnapshot(("c1",), ())
    await router.on_resync(snap, None)
    assert inbound.resynced == outbound.resynced == [snap]
