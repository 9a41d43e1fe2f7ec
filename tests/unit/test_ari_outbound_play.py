"""The abandon message's playback on a channel that already left the app."""

import pytest
from fakes.ari import FakeSupervisor

from asterisk_cube.ari.client import AriHttpError
from asterisk_cube.ari.outbound import OutboundApp, http_status
from asterisk_cube.config import Settings


def ari_error(status: int) -> AriHttpError:
    """What the ARI client raises for a failed REST call."""
    return AriHttpError("POST", "channels/x/play/y", status, "Channel not found")


class Channels:
    def __init__(self, status):
        self.status = status

    async def playWithId(self, channelId, playbackId, media):
        raise ari_error(self.status)


class Client:
    def __init__(self, status):
        self.channels = Channels(status)


@pytest.mark.parametrize(("status", "gone"), [(404, True), (409, True), (500, False)])
async def test_a_playback_refused_because_the_channel_left_marks_it_gone(status, gone):
    """#11 item 11: under load an abandoned contact who had hung up was logged
    ``abandoned_..._no_message`` (the play request failed with an HTTP error, the
    StasisEnd came 2.5 s later): Asterisk's 404/409 already says the channel left."""
    app = OutboundApp(Settings(), FakeSupervisor(Client(status)))
    app._watch("cube-d-1")
    assert await app.play("cube-d-1", "sound:beep", timeout=1) is False
    assert app.gone("cube-d-1").done() is gone


def test_http_status_of_the_clients_error():
    assert http_status(ari_error(409)) == 409
    assert http_status(RuntimeError("x")) is None


class FailingPlayback:
    """Asterisk starts the playback, then fails it (PlaybackFinished, state failed)
    because the contact hung up; GET /channels/{id} then says whether it still exists."""

    def __init__(self, app, exists):
        self.app, self.exists = app, exists

    async def playWithId(self, channelId, playbackId, media):
        self.app._resolve(self.app._playbacks.get(playbackId), False)

    async def get(self, channelId):
        if not self.exists:
            raise ari_error(404)
        return {"id": channelId, "state": "Up"}


@pytest.mark.parametrize("exists", [False, True])
async def test_a_playback_failed_by_a_hang_up_marks_the_channel_gone(exists):
    """#11 item 11: the beep started 3.2 s after the customer answered and failed 100 ms
    later (the customer's call ended); our StasisEnd for it came 2.2 s after that, so the
    abandoned contact was logged _no_message. Asterisk no longer has the channel: gone."""
    client = Client(500)
    app = OutboundApp(Settings(), FakeSupervisor(client))
    client.channels = FailingPlayback(app, exists)
    app._watch("cube-d-1")
    assert await app.play("cube-d-1", "sound:beep", timeout=1) is False
    assert app.gone("cube-d-1").done() is (not exists)
