"""Recording of a dialer (outbound) call on the real sandbox Asterisk (F-M4, issue #17):
before, only unit tests covered it. A power campaign recording all calls, a SIPp customer
who answers and hangs up after 3 s, a SIPp agent phone: the recording row is ``done`` for
the call, the WAV Asterisk stored (seen on its disk and over ARI) is non-empty with about
the call's talk time, and the recorded-calls report's row for the call points at it."""

from __future__ import annotations

import datetime as dt
import io
import wave

import dialerkit as e2e  # the dialer's runtime on the sandbox and its helpers
import httpx
import pytest
from dialerkit import cube, customers  # noqa: F401 - fixtures
from sippkit import phone
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.reports.common import Period
from asterisk_cube.reports.recordings import recordings
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import recordings as rec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("customers")]

CAMPAIGN = "Recorded"
TALK = 3.0  # the customer hangs up this long after answering (number(1, 5, 30, ...))


def ari_file(settings, name: str) -> bytes:
    resp = httpx.get(
        f"{settings.ari.url}/ari/recordings/stored/{name}/file",
        auth=(settings.ari.username, settings.ari.password),
        timeout=10,
    )
    resp.raise_for_status()
    return resp.content


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate()


async def test_a_recorded_power_call_leaves_a_file_the_report_points_at(
    cube,  # noqa: F811 - the fixture imported above
    sandbox,
    tmp_path,
):
    served = cube
    with served.tx() as s:
        camp = p.add_campaign(s, CAMPAIGN, mode="power", skill="rec", wrap_up=0)
        rec.set_policy(s, campaign=CAMPAIGN, mode="all")
        (agent,) = e2e.add_agents(s, [1], "rec")
        e2e.add_contacts(s, camp.id, [e2e.number(1, 5, int(TALK * 10), 1)])
    await served.start()

    def recorded():
        with served.tx() as s:
            row = s.scalar(select(m.Recording).where(m.Recording.campaign_id == camp.id))
            return row if row is not None and row.state != "recording" else None

    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01"):
        await e2e.ready(served.desk, [agent])
        served.running(CAMPAIGN)
        row = await e2e.until(recorded, timeout=30, what="the recording settled")
    assert row.state == "done", (row.state, row.error)
    with served.tx() as s:
        call = s.get(m.Call, row.call_id)
        assert call is not None and call.campaign_id == camp.id and call.agent_id == agent
        assert call.direction == m.Direction.OUTBOUND and call.answered_at is not None
        talk = (call.ended_at - call.answered_at).total_seconds()
    assert row.trigger == "all" and row.started_by == "policy"
    assert abs(row.duration_seconds - talk) <= 1.5, (row.duration_seconds, talk)

    # the file, on Asterisk's disk and over ARI: a WAV of the call's talk time
    on_disk = sandbox.host_dir / "spool" / "recording" / f"{row.name}.{row.format}"
    assert on_disk.is_file() and on_disk.stat().st_size > 44, on_disk  # more than a header
    data = ari_file(served.settings, row.name)
    assert data == on_disk.read_bytes()
    assert abs(wav_seconds(data) - talk) <= 1.5, (wav_seconds(data), talk)

    # the recorded-calls report: the call's row points at this recording
    today = dt.datetime.now(dt.UTC).date()
    with served.tx() as s:
        report = recordings(s, Period(today - dt.timedelta(days=1), today + dt.timedelta(days=1)))
    (line,) = [r for r in report.rows if r["call"] == call.id]
    assert line["recording_id"] == row.id and line["recording_state"] == "done"
    assert line["recording"] == f"/recordings/{row.id}/file"
    assert line["direction"] == "outbound" and line["campaign"] == CAMPAIGN
    assert line["agent"] == "agent01"
