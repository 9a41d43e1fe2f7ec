"""Supervisor listen / whisper / barge and call recording (issue #17) on the sandbox
Asterisk: the product's runtime in-process, a SIPp caller, a SIPp agent phone and the
supervisor's SIPp phone (its account's endpoint), the agent on the desk API and the
supervisor on the panel API (tests/panel_client.py).

What is asserted, from the outside (ARI ``GET /channels``, ``GET /bridges``, the
stored recording over ARI's HTTP):

* listen: the supervisor's channel and a ``Snoop/<agent channel>`` channel are alone in a
  listen bridge; the call's bridge still holds only the caller and the agent (so nobody
  hears the supervisor);
* whisper: the same shape with a new snoop channel on the agent's leg (``whisper=out``);
* with RTP (phones that send speech, tests/sipp/uas_talker.xml and uac_talker.xml): the
  call's recording (the mix caller and agent share) has none of the supervisor's voice
  in listen (even with the agent's phone echoing what it hears) and in whisper with a
  plain agent phone, has it in whisper with an echoing agent phone (the agent hears it)
  and in barge; the listen bridge carries the agent's and the caller's voice;
* barge: the supervisor's channel is in the call's own bridge with caller and agent;
  no snoop channel is left;
* when the caller hangs up, nothing of the session is left in Asterisk (no ``cube-sup-``
  or ``Snoop/`` channel, no listen bridge) and ``audit_log`` has every start and the end;
* agents get 403 on every supervisor action and on playback;
* the line records all calls (with a consent beep): the recording's duration is the
  call's talk time, it plays back over HTTP for a supervisor (a valid WAV of that
  length), is refused to an agent, is listed for the call, and is removed from Asterisk
  and marked deleted after its retention;
* a recording that cannot be written (the recording directory made read-only) leaves
  the call connected (the SIPp caller's call completes) and raises
  ``asterisk_cube_recording_failures_total``.
"""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import io
import math
import os
import time
import wave
from pathlib import Path

import httpx
import pytest
from agent_client import AgentClient, ApiError
from panel_client import SupervisorClient, listen, recordings_of, stop_listening
from sippkit import Sipp, caller, off_the_loop, phone
from sqlalchemy import select
from test_panel_live import cp, free_agents, free_slots, until

from asterisk_cube import dialplan as dp
from asterisk_cube.audio.store import StoredRecordings, purge_expired
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import recordings as r
from asterisk_cube.wiring import build_runtime

pytestmark = pytest.mark.integration

SUPPORT = "4721000041"
PCAP = "/usr/share/sip-tester/g711a.pcap"  # the talker's speech (tests/sipp/uas_talker.xml)
PASSWORD = "audio-test-pw-1"


@pytest.fixture
async def cube(sandbox, tmp_path):
    env = {**sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    agent_phone, boss_phone = free_agents(sandbox, 2)
    with transaction(sessions) as s:
        p.add_line(s, SUPPORT, "Support", priority=5)
        p.add_agent(
            s,
            "agent01",
            name="Agent 01",
            endpoint=f"PJSIP/agent{agent_phone:02d}",
            password=PASSWORD,
            lines=[SUPPORT],
        )
        p.add_agent(
            s,
            "boss",
            name="Boss",
            role="supervisor",
            endpoint=f"PJSIP/agent{boss_phone:02d}",
            password=PASSWORD,
        )
        r.set_policy(s, line=SUPPORT, mode="all", consent="beep", retention_days=30)
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        line_id = s.scalar(select(m.Line.id).where(m.Line.did == SUPPORT))
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    await asyncio.to_thread(dp.install, text, settings)
    runtime = build_runtime(settings, install_signal_handlers=False)
    task = asyncio.create_task(runtime.run())
    url = f"http://127.0.0.1:{settings.web.port}"
    boss, agent = SupervisorClient(url), AgentClient(url)
    ari = httpx.AsyncClient(
        base_url=f"{sandbox.ari_url}/ari", auth=(settings.ari.username, settings.ari.password)
    )

    async def ready():
        if task.done():
            await task
        sup = runtime.state.supervisor
        if sup is None or not sup.connected:
            return False
        try:
            if boss.csrf is None:
                await boss.login("boss", PASSWORD)
            if agent.csrf is None:
                await agent.login("agent01", PASSWORD)
        except Exception:
            return False
        return True

    await until(ready, timeout=20, what="ARI connected and web up")
    yield {
        "boss": boss,
        "agent": agent,
        "ari": ari,
        "ids": ids,
        "line_id": line_id,
        "sessions": sessions,
        "runtime": runtime,
        "settings": settings,
        "agent_port": sandbox.agent_port(agent_phone),
        "boss_port": sandbox.agent_port(boss_phone),
    }
    for c in (boss, agent, ari):
        await c.aclose()
    runtime.request_stop("test")
    assert await asyncio.wait_for(task, 15) == 0


async def ari_get(ari: httpx.AsyncClient, path: str):
    resp = await ari.get(path)
    return resp.json() if resp.status_code == 200 else None


async def bridge_members(ari, bridge_id: str) -> set[str] | None:
    bridge = await ari_get(ari, f"/bridges/{bridge_id}")
    return None if bridge is None else set(bridge["channels"])


async def connect_a_call(
    cube, sandbox, tmp_path, caller_id: str, hold_ms: int, *, talks: bool = False
):
    """A SIPp caller on SUPPORT answered by agent01 (its SIPp phone): (sipp, call_id).
    ``talks``: the caller sends speech (tests/sipp/uac_talker.xml)."""
    agent = cube["agent"]
    state = (await agent.view())["state"]
    if state == "logged_out":
        await agent.start()
        await agent.choose_lines([cube["line_id"]])
        await agent.ready()
    elif state == "wrap_up":  # after the previous call
        await agent.finish_wrap_up()
    elif state == "paused":
        await agent.ready()
    (slot,) = free_slots(sandbox, 1)
    sipp = caller(
        sandbox,
        SUPPORT,
        tmp_path / f"c{caller_id}",
        caller_id=caller_id,
        hold_ms=hold_ms,
        slot=slot,
        control_port=cp(sandbox.carrier_ports[slot]),
        # sippkit's default media port (port % 1000 based) overflows 65535 for the carrier
        # ports of a base like 60800; base + 3300.. is free (agents' media: base + 3200..)
        media_port=sandbox.base_port + 3300 + slot * 4,
    )
    if talks:
        sipp.scenario = UAC_TALKER  # the same caller, sending speech once answered
    sipp.start()
    async with agent.events() as events:
        view = await events.wait_for(lambda v: v["offer"], timeout=15)
        call_id = view["offer"]["call_id"]
        await agent.accept(call_id)
        await events.wait_for(lambda v: v["call"] and v["call"]["state"] == "connected", 15)
    return sipp, call_id


async def policy_taken(cube) -> None:
    """serve keeps each line's recording policy until its configuration watcher sees a
    change (issue #19): wait for that before the next call."""
    watcher = cube["runtime"].state.extras["config_watcher"]
    with cube["sessions"]() as s:
        want = s.scalar(select(m.ConfigVersion.version))
    await until(
        lambda: watcher.version is not None and watcher.version >= want,
        timeout=10,
        what="serve saw the recording policy change",
    )


async def test_listen_whisper_barge_then_the_call_ends_and_nothing_is_left(cube, sandbox, tmp_path):
    boss, agent, ari = cube["boss"], cube["agent"], cube["ari"]
    distributor = cube["runtime"].state.extras["distributor"]
    async with off_the_loop(
        phone(sandbox, cube["agent_port"], tmp_path / "a", control_port=cp(cube["agent_port"])),
        phone(sandbox, cube["boss_port"], tmp_path / "b", control_port=cp(cube["boss_port"])),
    ):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240001", 14000)
        live = distributor.calls[call_id]
        caller_ch, agent_ch = live.channel_id, live.agent_channel
        call_bridge = f"cube-call-{call_id}"
        assert await bridge_members(ari, call_bridge) == {caller_ch, agent_ch}

        # an agent may not listen
        with pytest.raises(ApiError) as refused:
            await listen(agent, call_id, "listen")
        assert refused.value.status == 403

        async def nothing_left():
            chans = await ari_get(ari, "/channels")
            bridges = await ari_get(ari, "/bridges")
            return (
                not [c for c in chans if c["id"].startswith("cube-sup-")]
                and not [c for c in chans if c["name"].startswith("Snoop/")]
                and not [b for b in bridges if b["id"].startswith("cube-listen-")]
            )

        # Stop from the panel: the supervisor's leg, the snoop and the bridge go
        first = await listen(boss, call_id, "listen")
        assert await bridge_members(ari, first["bridge"]) == {
            first["supervisor_channel"],
            first["snoop_channel"],
        }
        await stop_listening(boss)
        await until(nothing_left, timeout=10, what="the stopped session's channels gone")
        assert await bridge_members(ari, call_bridge) == {caller_ch, agent_ch}

        # listen: supervisor + snoop on the agent's leg, in a bridge of their own
        started = time.monotonic()
        heard = await listen(boss, call_id, "listen")
        rang = time.monotonic() - started  # ring (SIPp answers at once) + snoop + bridge
        sup_ch, snoop, lbridge = (
            heard["supervisor_channel"],
            heard["snoop_channel"],
            heard["bridge"],
        )
        assert sup_ch.startswith("cube-sup-") and lbridge.startswith("cube-listen-")
        assert await bridge_members(ari, lbridge) == {sup_ch, snoop}
        snoop_json = await ari_get(ari, f"/channels/{snoop}")
        assert snoop_json["name"].startswith(f"Snoop/{agent_ch}")
        assert await bridge_members(ari, call_bridge) == {caller_ch, agent_ch}
        sup_json = await ari_get(ari, f"/channels/{sup_ch}")
        assert sup_json["state"] == "Up"

        # whisper: the same phone, a new snoop (whisper=out on the agent's leg)
        started = time.monotonic()
        whisper = await listen(boss, call_id, "whisper")
        switched = time.monotonic() - started
        print(
            f"\nlisten: phone rung and connected in {rang * 1000:.0f} ms; "
            f"switch to whisper {switched * 1000:.0f} ms"
        )
        assert whisper["supervisor_channel"] == sup_ch and whisper["snoop_channel"] != snoop
        assert await ari_get(ari, f"/channels/{snoop}") is None  # the listen snoop went
        assert await bridge_members(ari, whisper["bridge"]) == {sup_ch, whisper["snoop_channel"]}
        assert await bridge_members(ari, call_bridge) == {caller_ch, agent_ch}

        # barge: the supervisor joins the call's bridge; no snoop, no listen bridge left
        barge = await listen(boss, call_id, "barge")
        assert barge["bridge"] == call_bridge and barge["snoop_channel"] is None
        assert await bridge_members(ari, call_bridge) == {caller_ch, agent_ch, sup_ch}
        assert await ari_get(ari, f"/bridges/{whisper['bridge']}") is None
        channels = {ch["id"]: ch["name"] for ch in await ari_get(ari, "/channels")}
        assert not [n for n in channels.values() if n.startswith("Snoop/")]

        # the caller hangs up (SIPp's hold ends): the session ends with the call
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()
        await until(nothing_left, timeout=10, what="the supervisor's leg and snoops gone")
        assert cube["runtime"].state.extras["listening"].sessions == {}

    async def audited():
        with cube["sessions"]() as s:
            rows = s.scalars(
                select(m.AuditLog).where(m.AuditLog.action.in_(("listen_start", "listen_end")))
            ).all()
        if len([a for a in rows if a.action == "listen_end"]) < 2:
            return None
        return [(a.action, a.details.get("mode"), a.details.get("reason")) for a in rows]

    log = await until(audited, timeout=5, what="listen_end audited")
    assert log == [
        ("listen_start", "listen", None),
        ("listen_end", "listen", "stopped"),
        ("listen_start", "listen", None),
        ("listen_start", "whisper", None),
        ("listen_start", "barge", None),
        ("listen_end", "barge", "call_ended"),
    ]
    with cube["sessions"]() as s:
        assert {
            a.actor
            for a in s.scalars(select(m.AuditLog).where(m.AuditLog.action == "listen_start"))
        } == {"boss"}


async def test_a_recorded_call_plays_for_a_supervisor_not_an_agent_and_expires(
    cube, sandbox, tmp_path
):
    boss, agent, ari = cube["boss"], cube["agent"], cube["ari"]
    async with off_the_loop(
        phone(sandbox, cube["agent_port"], tmp_path / "a", control_port=cp(cube["agent_port"]))
    ):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240002", 4000)
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()

    async def done():
        rows = await recordings_of(boss, call_id)
        return rows if rows and rows[0]["state"] == "done" else None

    (row,) = await until(done, timeout=15, what="the recording finished")
    with cube["sessions"]() as s:
        call = s.get(m.Call, call_id)
        talk = (call.ended_at - call.answered_at).total_seconds()
    assert row["trigger"] == "all" and row["started_by"] == "policy"
    assert abs(row["duration_seconds"] - talk) <= 1.5, (row["duration_seconds"], talk)

    # the call's row in the recorded-calls report links it
    report = await boss._get("/api/reports?report=recordings&zone=UTC")
    (rep,) = [x for x in report["rows"] if x["call"] == call_id]
    assert rep["recording"] == row["url"] and rep["line"] == SUPPORT
    assert rep["caller"] == "91240002" and rep["agent"] == "agent01"
    page = await boss.request("GET", "/reports?report=recordings&zone=UTC")
    assert f'src="{row["url"]}"' in page.text

    # played back over HTTP for the supervisor: a WAV of the call's length
    resp = await boss.request("GET", row["url"])
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(resp.content)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert abs(seconds - talk) <= 1.5, (seconds, talk)
    download = await boss.request("GET", row["url"] + "?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    # refused to an agent, and to nobody logged in
    assert (await agent.request("GET", row["url"])).status_code == 403
    assert (await agent.request("GET", f"/api/recordings?call_id={call_id}")).status_code == 403
    with cube["sessions"]() as s:
        actions = [
            a.action for a in s.scalars(select(m.AuditLog)) if a.action.startswith("recording_")
        ]
    assert actions.count("recording_play") == 1 and actions.count("recording_download") == 1

    # retention: 1 day, run as if two days later; the file goes from Asterisk
    with transaction(cube["sessions"]) as s:
        r.set_policy(s, line=SUPPORT, retention_days=1)
    store = StoredRecordings(cube["settings"].ari)
    assert await store.exists(row["name"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert await purge_expired(cube["sessions"], store, now=later) == 1
    assert not await store.exists(row["name"])
    assert await ari_get(ari, f"/recordings/stored/{row['name']}") is None
    (gone,) = await recordings_of(boss, call_id)
    assert gone["state"] == "deleted" and gone["url"] is None
    assert (await boss.request("GET", row["url"])).status_code == 404


async def test_a_recording_that_cannot_be_written_leaves_the_call_connected(
    cube, sandbox, tmp_path
):
    ari = cube["ari"]
    recorder = cube["runtime"].state.extras["recorder"]
    spool = sandbox.host_dir / "spool" / "recording"
    spool.mkdir(exist_ok=True)
    mode = spool.stat().st_mode
    owner = (spool.stat().st_uid, spool.stat().st_gid)
    os.chown(spool, 0, 0)
    spool.chmod(0o555)  # Asterisk runs as user asterisk: it cannot write there
    try:
        async with off_the_loop(
            phone(sandbox, cube["agent_port"], tmp_path / "a", control_port=cp(cube["agent_port"]))
        ):
            sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240003", 5000)
            await until(
                lambda: asyncio.sleep(0, recorder.failures >= 1),
                timeout=10,
                what="the recording failure counted",
            )
            live = cube["runtime"].state.extras["distributor"].calls[call_id]
            # the call is still up and bridged after the failure
            members = await bridge_members(ari, f"cube-call-{call_id}")
            assert members == {live.channel_id, live.agent_channel}
            result = await asyncio.to_thread(sipp.wait, 30)
            assert result.ok, result.summary()  # the caller talked its 5 s and hung up
    finally:
        spool.chmod(mode & 0o7777)
        os.chown(spool, *owner)
    metrics = cube["runtime"].state.extras["metrics"].exposition().decode()
    failures = [
        line
        for line in metrics.splitlines()
        if line.startswith("asterisk_cube_recording_failures_total{")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in failures) >= 1, failures
    (row,) = await recordings_of(cube["boss"], call_id)
    assert row["state"] == "failed" and row["url"] is None


async def test_on_demand_recording_from_the_desk(cube, sandbox, tmp_path):
    boss, agent = cube["boss"], cube["agent"]
    with transaction(cube["sessions"]) as s:
        r.set_policy(s, line=SUPPORT, mode="on_demand", consent="none")
    await policy_taken(cube)
    async with off_the_loop(
        phone(sandbox, cube["agent_port"], tmp_path / "a", control_port=cp(cube["agent_port"]))
    ):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240004", 4000)
        assert await recordings_of(boss, call_id) == []  # nothing until somebody asks
        resp = await agent.request("POST", "/api/desk/record", {})
        assert resp.status_code == 200, resp.text
        name = resp.json()["name"]
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()

    async def done():
        rows = await recordings_of(boss, call_id)
        return rows if rows and rows[0]["state"] == "done" else None

    (row,) = await until(done, timeout=15, what="the on-demand recording finished")
    assert (row["name"], row["trigger"], row["started_by"]) == (name, "on_demand", "agent01")
    assert row["duration_seconds"] > 1
    with cube["sessions"]() as s:
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "recording_start"))
        assert (audit.actor, audit.details["call_id"]) == ("agent01", call_id)
    # with recording off the desk is refused
    with transaction(cube["sessions"]) as s:
        r.set_policy(s, line=SUPPORT, mode="off")
    await policy_taken(cube)
    async with off_the_loop(
        phone(sandbox, cube["agent_port"], tmp_path / "a2", control_port=cp(cube["agent_port"]))
    ):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240005", 3000)
        resp = await agent.request("POST", "/api/desk/record", {})
        assert resp.status_code == 403 and resp.json()["error"] == "not_permitted"
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()
    assert await recordings_of(boss, call_id) == []


TALKER = Path(__file__).resolve().parents[1] / "sipp" / "uas_talker.xml"
UAC_TALKER = TALKER.with_name("uac_talker.xml")


def loudness(wav_bytes: bytes) -> float:
    """The loudest 200 ms of a 16-bit mono WAV, as RMS (digital silence is 0)."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = array.array("h", frames)
    window = rate // 5
    best = 0.0
    for start in range(0, max(1, len(samples) - window), window):
        chunk = samples[start : start + window]
        if chunk:
            best = max(best, math.sqrt(sum(x * x for x in chunk) / len(chunk)))
    return best


@pytest.mark.skipif(not Path(PCAP).exists(), reason=f"{PCAP} (Debian's sip-tester) missing")
async def test_who_hears_the_supervisor_from_the_calls_recording(cube, sandbox, tmp_path):
    """The supervisor's phone talks (RTP speech); the call's bridge recording is the mix
    caller and agent share. listen: silent, even with the agent's phone echoing what it
    hears (nobody in the call hears the supervisor); whisper: silent with a plain agent
    phone (the caller does not hear the supervisor) but loud when the agent's phone echoes
    what it hears (the agent does); barge: loud (the supervisor is in the call). And the
    other way: with the agent's phone talking, what the listening supervisor is sent (the
    listen bridge, recorded by the test over ARI) is loud."""
    boss = cube["boss"]
    with transaction(cube["sessions"]) as s:
        r.set_policy(s, line=SUPPORT, mode="all", consent="none")
    await policy_taken(cube)
    levels = {}
    for n, (mode, echo) in enumerate(
        (("listen", True), ("whisper", False), ("whisper", True), ("barge", False))
    ):
        agent_phone = phone(
            sandbox,
            cube["agent_port"],
            tmp_path / f"a{n}",
            control_port=cp(cube["agent_port"]),
            extra_args=["-rtp_echo"] if echo else [],
        )
        talker = Sipp(
            TALKER,
            cube["boss_port"],
            tmp_path / f"b{n}",
            remote=f"127.0.0.1:{sandbox.sip_port}",
            sets={"answer_ms": 0, "talk_ms": 0},
            control_port=cp(cube["boss_port"]),
        )
        async with off_the_loop(agent_phone, talker):
            sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, f"9124010{n}", 6000)
            await listen(boss, call_id, mode)
            result = await asyncio.to_thread(sipp.wait, 30)
            assert result.ok, result.summary()

        async def done(call_id=call_id):
            rows = await recordings_of(boss, call_id)
            return rows if rows and rows[0]["state"] == "done" else None

        (row,) = await until(done, timeout=15, what="the recording finished")
        resp = await boss.request("GET", row["url"])
        levels[(mode, echo)] = loudness(resp.content)
    # and the supervisor hears the call: the agent's phone talks, the supervisor listens;
    # the test records the listen bridge (what the supervisor's phone is sent) over ARI
    ari = cube["ari"]
    talking_agent = Sipp(
        TALKER,
        cube["agent_port"],
        tmp_path / "a-talks",
        remote=f"127.0.0.1:{sandbox.sip_port}",
        sets={"answer_ms": 0, "talk_ms": 0},
        control_port=cp(cube["agent_port"]),
    )
    quiet_boss = phone(
        sandbox, cube["boss_port"], tmp_path / "b-quiet", control_port=cp(cube["boss_port"])
    )
    async with off_the_loop(talking_agent, quiet_boss):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240199", 6000)
        session = await listen(boss, call_id, "listen")
        name = f"test-listen-{call_id}"
        resp = await ari.post(
            f"/bridges/{session['bridge']}/record", params={"name": name, "format": "wav"}
        )
        assert resp.status_code == 201, resp.text
        result = await asyncio.to_thread(sipp.wait, 30)  # the call ends: so does the bridge
        assert result.ok, result.summary()

    def stored(name):
        async def file():
            resp = await ari.get(f"/recordings/stored/{name}/file")
            return resp.content if resp.status_code == 200 else None

        return file

    heard = loudness(await until(stored(name), timeout=10, what="the listen bridge's recording"))
    await ari.delete(f"/recordings/stored/{name}")
    levels[("supervisor hears the agent", "listen")] = heard

    # ... and the caller: the caller talks, agent and supervisor are quiet
    plain_agent = phone(
        sandbox, cube["agent_port"], tmp_path / "a-quiet", control_port=cp(cube["agent_port"])
    )
    quiet_boss = phone(
        sandbox, cube["boss_port"], tmp_path / "b-quiet2", control_port=cp(cube["boss_port"])
    )
    async with off_the_loop(plain_agent, quiet_boss):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240198", 6000, talks=True)
        session = await listen(boss, call_id, "listen")
        name2 = f"test-listen-{call_id}"
        resp = await ari.post(
            f"/bridges/{session['bridge']}/record", params={"name": name2, "format": "wav"}
        )
        assert resp.status_code == 201, resp.text
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()
    heard_caller = loudness(await until(stored(name2), timeout=10, what="the listen recording"))
    await ari.delete(f"/recordings/stored/{name2}")
    levels[("supervisor hears the caller", "listen")] = heard_caller
    print(f"\nloudest 200 ms (RMS): {levels}")
    assert heard > 300 and heard_caller > 300
    assert levels[("listen", True)] < 50
    assert levels[("whisper", False)] < 50
    assert levels[("whisper", True)] > 300
    assert levels[("barge", False)] > 300


async def test_the_consent_announcement_is_heard_in_the_call(cube, sandbox, tmp_path):
    """consent=announcement: the media is played to the call's bridge (both parties hear
    it) as recording starts; with silent phones the recording holds only the notice
    (consent none and silent phones give digital silence: the listen case above)."""
    boss = cube["boss"]
    with transaction(cube["sessions"]) as s:
        r.set_policy(
            s, line=SUPPORT, mode="all", consent="announcement", announcement="sound:tt-monkeys"
        )
    await policy_taken(cube)
    async with off_the_loop(
        phone(sandbox, cube["agent_port"], tmp_path / "a", control_port=cp(cube["agent_port"]))
    ):
        sipp, call_id = await connect_a_call(cube, sandbox, tmp_path, "91240301", 4000)
        result = await asyncio.to_thread(sipp.wait, 30)
        assert result.ok, result.summary()

    async def done():
        rows = await recordings_of(boss, call_id)
        return rows if rows and rows[0]["state"] == "done" else None

    (row,) = await until(done, timeout=15, what="the recording finished")
    level = loudness((await boss.request("GET", row["url"])).content)
    print(f"\nconsent announcement: loudest 200 ms of the recording {level:.0f} RMS")
    assert level > 300
