"""After a kill, callers whose arrival never reached the database are adopted from ARI."""

import asyncio
import datetime as dt

import pytest
from fakes.ari import FakeSupervisor
from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.inbound import InboundApp, caller_arrival, created_at, stasis_args
from asterisk_cube.ari.supervisor import AppSnapshot
from asterisk_cube.config import Settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p


def channel(cid, args, created, number):
    return {
        "id": cid,
        "caller": {"number": number},
        "creationtime": created,
        "dialplan": {"context": "cube-in", "exten": "100", "app_name": "Stasis", "app_data": args},
    }


class FakeAri:
    def __init__(self, channels):
        self.by_id = {c["id"]: c for c in channels}
        self.calls = []
        outer = self

        class Channels:
            async def get(self, channelId):
                if channelId not in outer.by_id:
                    raise LookupError("Channel not found")
                return outer.by_id[channelId]

            async def answer(self, channelId):
                outer.calls.append(("answer", channelId))

        class Bridges:
            async def createWithId(self, **kw):
                pass

            async def startMoh(self, **kw):
                pass

            async def addChannel(self, bridgeId, channel):
                outer.calls.append(("hold", bridgeId, channel))

        self.channels, self.bridges = Channels(), Bridges()


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_line(s, "100", "Support")
    return sessions


def test_stasis_args_and_creation_time_from_channel_json():
    raw = channel("c1", "asterisk-cube,service,3,7,closed", "2026-11-23T10:00:01.250+0100", "1")
    assert stasis_args(raw) == ["service", "3", "7", "closed"]
    assert created_at(raw) == dt.datetime(2026, 11, 23, 9, 0, 1, 250000, tzinfo=dt.UTC)
    assert stasis_args({"dialplan": {}}) == [] and created_at({}) is None


@pytest.mark.parametrize(
    ("app_data", "expected"),
    [
        # an old dialplan without the presentation argument: shown as before
        ("a,inbound,3", dict(line_id=3, caller="+4791000001", hours="", campaign_id=None)),
        (
            "a,inbound,3,allowed_not_screened",
            dict(line_id=3, caller="+4791000001", hours="", campaign_id=None),
        ),
        (
            "a,inbound,3,prohib_not_screened",
            dict(line_id=3, caller="anonymous", hours="", campaign_id=None),
        ),
        (
            "a,service,3,7,closed,prohib",
            dict(line_id=3, caller="anonymous", hours="closed", campaign_id=None),
        ),
        (
            "a,service,3,7,,allowed",
            dict(line_id=3, caller="+4791000001", hours="", campaign_id=None),
        ),
        ("a,callback,5,allowed", dict(line_id=None, caller="+4791000001", hours="", campaign_id=5)),
        (
            "a,callback,5,unavailable",
            dict(line_id=None, caller="anonymous", hours="", campaign_id=5),
        ),
    ],
)
def test_caller_arrival_reads_the_kind_and_the_presentation(app_data, expected):
    raw = channel("c1", app_data, "2026-11-23T10:00:01.250+0100", "+4791000001")
    assert caller_arrival(stasis_args(raw), raw) == {**expected, "dialed": "100"}


async def test_unknown_callers_are_queued_again_in_arrival_order(sessions):
    with transaction(sessions) as s:
        line = s.scalar(select(m.Line)).id
    d = Distributor(sessions, EventHub())
    d.load()
    known = d.call_arrived("known", line, "+4791000000")  # in the DB already
    ari = FakeAri(
        [
            channel("late", f"asterisk-cube,inbound,{line}", "2026-11-23T10:00:05.000+0000", "2"),
            channel("early", f"asterisk-cube,inbound,{line}", "2026-11-23T10:00:01.000+0000", "1"),
            channel("agent-leg", "asterisk-cube,agent,9", "2026-11-23T10:00:02.000+0000", "3"),
        ]
    )
    app = InboundApp(Settings(), FakeSupervisor(ari), d)
    await app.on_resync(AppSnapshot(("known", "late", "gone", "early", "agent-leg"), ()), ari)
    await asyncio.gather(*app.supervisor.tasks)

    waiting = sorted(
        (c for c in d.calls.values() if c.phase in ("waiting", "offered")),
        key=lambda c: c.queued_at,
    )
    assert [c.channel_id for c in waiting] == ["early", "late", "known"]
    assert waiting[0].caller == "1" and waiting[0].line_id == line
    assert known in d.calls
    # each adopted caller is (again) answered and put in its line's holding bridge
    assert ("hold", f"cube-hold-{line}", "early") in ari.calls
    assert ("hold", f"cube-hold-{line}", "late") in ari.calls
    d.journal.flush()
    with transaction(sessions) as s:
        assert sorted(s.scalars(select(m.Call.channel_id))) == ["early", "known", "late"]
