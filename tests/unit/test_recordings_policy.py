"""Recording policies, rows and retention (issue #17, services/recordings.py, audio/)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from asterisk_cube.audio.recorder import Recorder, RecordingRefused
from asterisk_cube.audio.store import purge_expired
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import recordings as r

NOW = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "Winter", direction="inbound")
        p.add_line(s, "4721000001", "Support")
        p.add_line(s, "4721000002", "Hotline", campaign=camp.name)
    return sessions


def ids(sessions):
    with sessions() as s:
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
        camp = s.scalar(select(m.Campaign.id))
    return lines, camp


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"line": "4721000001", "mode": "sometimes"}, "recording mode 'sometimes'"),
        ({"line": "4721000001", "consent": "shout"}, "consent 'shout'"),
        ({"line": "4721000001", "retention_days": 0}, "retention must be 1..3650 days"),
        ({"line": "4721000001", "consent": "announcement"}, "needs --announcement"),
        ({"line": "4721000001", "announcement": "/etc/passwd"}, "media URI"),
        ({"line": "4799999999", "mode": "all"}, "no line '4799999999'"),
        ({"campaign": "Nope", "mode": "all"}, "no campaign 'Nope'"),
        ({"mode": "all"}, "exactly one"),
        ({"line": "4721000001", "campaign": "Winter"}, "exactly one"),
    ],
)
def test_bad_policy_input_is_one_line_and_writes_nothing(sessions, kwargs, message):
    with pytest.raises(r.RecordingError, match=message), transaction(sessions) as s:
        r.set_policy(s, **kwargs)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.RecordingPolicy)) == 0
        assert s.scalar(select(func.count()).select_from(m.AuditLog)) == 0


def test_line_policy_wins_then_the_hotline_campaign_then_off(sessions):
    lines, camp = ids(sessions)
    with transaction(sessions) as s:
        r.set_policy(s, campaign="Winter", mode="all", consent="beep", retention_days=30)
        r.set_policy(s, line="4721000001", mode="on_demand", retention_days=5)
    with sessions() as s:
        assert r.policy_for(s, lines["4721000001"], None).mode == "on_demand"
        hot = r.policy_for(s, lines["4721000002"], None)  # the hotline takes its campaign's
        assert (hot.mode, hot.consent, hot.retention_days, hot.campaign_id) == (
            "all",
            "beep",
            30,
            camp,
        )
        assert r.policy_for(s, None, camp).mode == "all"  # a dialer call
        assert r.policy_for(s, None, None).mode == "off"
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.action == "recording_policy")).all()
        assert [a.target for a in audit] == ["campaign Winter", "line 4721000001"]


class FakeStore:
    def __init__(self, fail: set[str] = frozenset()):
        self.deleted: list[str] = []
        self.fail = fail

    async def delete(self, name):
        if name in self.fail:
            return False
        self.deleted.append(name)
        return True


async def test_retention_deletes_expired_files_and_a_shorter_retention_applies_to_old_ones(
    sessions,
):
    lines, _camp = ids(sessions)
    policy = r.Policy(mode="all", retention_days=30, line_id=lines["4721000001"])
    with transaction(sessions) as s:
        r.set_policy(s, line="4721000001", mode="all", retention_days=30)
        for n, age in ((1, 40), (2, 10), (3, 1)):
            r.started(
                s,
                call_id=n,
                name=f"cube-{n}",
                target="bridge:x",
                trigger="all",
                started_by="policy",
                policy=policy,
                now=NOW - dt.timedelta(days=age),
            )
            r.finished(s, f"cube-{n}", now=NOW, duration=12.0)
    store = FakeStore()
    assert await purge_expired(sessions, store, now=NOW) == 1
    assert store.deleted == ["cube-1"]
    with transaction(sessions) as s:  # the law says 7 days now: the 10-day-old one goes too
        r.set_policy(s, line="4721000001", retention_days=7)
    assert await purge_expired(sessions, store, now=NOW) == 1
    assert store.deleted == ["cube-1", "cube-2"]
    with sessions() as s:
        states = {
            x.name: (x.state, x.deleted_at is not None) for x in s.scalars(select(m.Recording))
        }
    assert states == {
        "cube-1": ("deleted", True),
        "cube-2": ("deleted", True),
        "cube-3": ("done", False),
    }


async def test_a_file_asterisk_cannot_delete_is_kept_for_the_next_run(sessions):
    policy = r.Policy(mode="all", retention_days=1)
    with transaction(sessions) as s:
        r.started(
            s,
            call_id=1,
            name="cube-1",
            target="bridge:x",
            trigger="all",
            started_by="policy",
            policy=policy,
            now=NOW - dt.timedelta(days=3),
        )
        r.finished(s, "cube-1", now=NOW, duration=1.0)
    assert await purge_expired(sessions, FakeStore(fail={"cube-1"}), now=NOW) == 0
    with sessions() as s:
        assert s.scalar(select(m.Recording.state)) == "done"


class RefusingBridges:
    def __init__(self):
        self.played: list[str] = []

    async def playWithId(self, **kw):
        self.played.append(kw["media"])

    async def record(self, **kw):
        raise RuntimeError("HTTP 500: Internal Server Error (unwritable directory)")


async def test_a_refused_recording_is_counted_logged_and_marked_failed_never_raised(sessions):
    lines, _ = ids(sessions)
    with transaction(sessions) as s:
        r.set_policy(s, line="4721000001", mode="all", consent="beep")
    bridges = RefusingBridges()
    recorder = Recorder(sessions, lambda: SimpleNamespace(bridges=bridges), now=lambda: NOW)
    recorder.bridged(7, "cube-call-7", lines["4721000001"], None)  # returns at once
    for _ in range(200):
        if recorder.failures:
            break
        await asyncio.sleep(0.01)
    assert recorder.failures == 1 and recorder.failure_reasons == {"request": 1}
    assert bridges.played == ["sound:beep"]
    for _ in range(200):
        with sessions() as s:
            row = s.scalar(select(m.Recording))
        if row is not None and row.state == "failed":
            break
        await asyncio.sleep(0.01)
    assert row.state == "failed" and "unwritable" in row.error
    # on demand: the policy allows it (all), so the desk may try again; it fails cleanly
    with pytest.raises(RecordingRefused) as refused:
        await recorder.start(7, by="kari")
    assert refused.value.reason == "record_failed"
    assert recorder.failures == 2


async def test_on_demand_is_refused_when_the_line_does_not_record(sessions):
    lines, _ = ids(sessions)
    recorder = Recorder(sessions, lambda: SimpleNamespace(bridges=RefusingBridges()))
    recorder.bridged(8, "cube-call-8", lines["4721000001"], None)
    with pytest.raises(RecordingRefused) as refused:
        await recorder.start(8, by="kari")
    assert refused.value.reason == "not_permitted"
    with pytest.raises(RecordingRefused) as refused:
        await recorder.start(999, by="kari")
    assert refused.value.reason == "illegal_state"


class Stored:
    def __init__(self, names):
        self.names = set(names)

    async def exists(self, name):
        return name in self.names


async def test_recordings_open_across_a_restart_are_settled_at_resync(sessions):
    policy = r.Policy(mode="all")
    with transaction(sessions) as s:
        for n in (1, 2, 3):
            r.started(
                s,
                call_id=n,
                name=f"cube-{n}",
                target=f"bridge:cube-call-{n}",
                trigger="all",
                started_by="policy",
                policy=policy,
                now=NOW,
            )
    recorder = Recorder(sessions, lambda: None, now=lambda: NOW, store=Stored({"cube-1"}))
    # cube-3's bridge is still up (the call goes on): left alone
    assert await recorder.resync({"cube-call-3", "cube-hold-1"}) == 2
    with sessions() as s:
        states = {x.name: x.state for x in s.scalars(select(m.Recording))}
    assert states == {"cube-1": "done", "cube-2": "failed", "cube-3": "recording"}


async def test_finished_without_a_stored_file_is_a_failure(sessions):
    """Asterisk 22 says RecordingFinished even when it could not open the file."""
    policy = r.Policy(mode="all")
    with transaction(sessions) as s:
        r.started(
            s,
            call_id=1,
            name="cube-1",
            target="bridge:b",
            trigger="all",
            started_by="policy",
            policy=policy,
            now=NOW,
        )
    recorder = Recorder(sessions, lambda: None, now=lambda: NOW, store=Stored(set()))
    recorder.by_name["cube-1"] = 1
    recorder.on_event("RecordingFinished", {"recording": {"name": "cube-1", "duration": 0}})
    for _ in range(200):
        with sessions() as s:
            state = s.scalar(select(m.Recording.state))
        if state != "recording":
            break
        await asyncio.sleep(0.01)
    assert state == "failed" and recorder.failures == 1 and recorder.finished == 0
