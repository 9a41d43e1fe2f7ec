"""The dialer's ARI side after a (re)connect: a dial that is still ringing is not lost."""

from fakes.ari import FakeSupervisor

from asterisk_cube.ari.outbound import OutboundApp
from asterisk_cube.ari.supervisor import AppSnapshot
from asterisk_cube.config import Settings


class Channels:
    def __init__(self, existing):
        self.existing = set(existing)

    async def get(self, channelId):
        if channelId not in self.existing:
            raise LookupError("Channel not found")
        return {"id": channelId, "state": "Ring"}


class Client:
    def __init__(self, existing):
        self.channels = Channels(existing)


async def test_resync_ends_only_the_dials_asterisk_no_longer_has():
    """#11 item 11: the dialer dials as soon as ARI connects; the first resync's snapshot
    (read meanwhile) lacks that dial, which rings outside the app until answered. It used
    to be ended as lost: the contact was logged not answered while its phone rang (the e2e
    tests' first call under load: ``no_answer`` instead of ``abandoned``/``machine``)."""
    client = Client(existing={"cube-d-ringing"})
    app = OutboundApp(Settings(), FakeSupervisor(client))
    ringing = app._watch("cube-d-ringing")
    starting = app._watch("cube-d-starting")  # its originate request is on its way
    app._originating.add("cube-d-starting")
    lost = app._watch("cube-d-lost")  # Asterisk restarted: it is gone
    await app.on_resync(AppSnapshot((), ()), client)
    assert not ringing.done() and not app.gone("cube-d-ringing").done()
    assert not starting.done()
    assert lost.result() == (False, None, []) and app.gone("cube-d-lost").done()


class Bridges:
    def __init__(self):
        self.destroyed = []

    async def createWithId(self, **params):
        pass

    async def addChannel(self, **params):
        pass

    async def destroy(self, bridgeId):
        self.destroyed.append(bridgeId)


async def test_resync_destroys_the_call_bridges_a_previous_serve_left():
    """A fresh-clone CI run: a serve stopped during a dialer call (a failed browser test)
    left ``cube-dial-2`` in Asterisk, empty once its legs hung up, and every later "nothing
    left in Asterisk" check failed on it. The next serve's resync removes such bridges and
    keeps its own (a call it is bridging now) and the inbound side's."""
    client = Client(existing=())
    client.bridges = Bridges()
    app = OutboundApp(Settings(), FakeSupervisor(client))
    await app.bridge(7, ["cube-d-a", "cube-a-b"])  # a call of this process
    snapshot = AppSnapshot((), ("cube-dial-2", "cube-dial-7", "cube-call-3", "cube-hold-1"))
    await app.on_resync(snapshot, client)
    assert client.bridges.destroyed == ["cube-dial-2"]
    await app.end_call(7)
    await app.on_resync(AppSnapshot((), ("cube-dial-7",)), client)  # its DELETE failed
    assert client.bridges.destroyed == ["cube-dial-2", "cube-dial-7", "cube-dial-7"]
