"""The audio app behind the Stasis router (issue #17): a supervisor's phone and snoop
channels go to it, every other event reaches it too, and it takes part in resync."""

from test_ari_router import App

from asterisk_cube.ari.router import StasisRouter
from asterisk_cube.ari.supervisor import AppSnapshot


async def test_sup_and_snoop_go_to_the_audio_app_other_events_to_all():
    inbound, outbound, audio = App(), App(), App()
    router = StasisRouter(inbound, outbound, audio)
    await router.on_event({"type": "StasisStart", "args": ["sup", "abc"]}, None)
    await router.on_event({"type": "StasisStart", "args": ["snoop", "abc"]}, None)
    await router.on_event({"type": "StasisStart", "args": ["inbound", "1"]}, None)
    await router.on_event({"type": "RecordingFinished"}, None)
    assert audio.events == [
        ("StasisStart", ("sup", "abc")),
        ("StasisStart", ("snoop", "abc")),
        ("RecordingFinished", ()),
    ]
    assert inbound.events == [("StasisStart", ("inbound", "1")), ("RecordingFinished", ())]
    assert outbound.events == [("RecordingFinished", ())]
    snap = AppSnapshot(("c1",), ("cube-listen-x",))
    await router.on_resync(snap, None)
    assert audio.resynced == [snap]


async def test_without_an_audio_app_sup_is_not_ours_and_goes_to_inbound():
    inbound, outbound = App(), App()
    await StasisRouter(inbound, outbound).on_event(
        {"type": "StasisStart", "args": ["sup", "x"]}, None
    )
    assert inbound.events == [("StasisStart", ("sup", "x"))]


def test_wiring_hooks_record_dialer_calls_by_their_campaign():
    """audio/wiring.py: both adapters' on_bridged reach the recorder with the call's line
    and campaign from the distributor's memory (a dialer call has only a campaign)."""
    from types import SimpleNamespace

    from asterisk_cube.audio.wiring import build
    from asterisk_cube.config import Settings

    calls = {
        5: SimpleNamespace(line_id=None, campaign_id=3),
        6: SimpleNamespace(line_id=2, campaign_id=None),
    }
    distributor = SimpleNamespace(calls=calls)
    parts = build(Settings(), sessions=None, distributor=distributor)
    seen = []
    parts.recorder.bridged = lambda *args: seen.append(args)
    inbound, outbound = SimpleNamespace(), SimpleNamespace()
    parts.app(SimpleNamespace(supervisor=None), inbound, outbound, distributor)
    outbound.on_bridged(5, "cube-dial-5")
    inbound.on_bridged(6, "cube-call-6")
    inbound.on_bridged(99, "cube-call-99")  # unknown to the distributor: no policy scope
    assert seen == [
        (5, "cube-dial-5", None, 3),
        (6, "cube-call-6", 2, None),
        (99, "cube-call-99", None, None),
    ]
