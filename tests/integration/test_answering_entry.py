"""Answering-service call entry end to end (F-S6, F-S7, F-S8): the generated dialplan on the
real sandbox Asterisk, our FastAGI ``entry`` route in the runtime, SIPp callers on the carrier
trunk.

- inside hours the call reaches the Stasis app (queued as an answering-service call);
- a blocklisted and an anonymous caller are rejected unanswered (183 + the message as early
  media, then 403) and the verdict is logged with its reason; no call reaches the queue;
- outside hours with "announce" handling the closed prompt, the next opening and goodbye
  play, then Asterisk hangs up: for an English client through ``SayUnixTime``, for a
  Norwegian one as our own word prompts ("Vi åpner igjen onsdag klokken åtte tretti", and
  at midnight "... klokken null null").

"Outside hours" is made by giving the client hours on a weekday that is not today.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sippkit import SCENARIOS, Sipp, caller
from sqlalchemy import select
from support.polling import until

from asterisk_cube import dialplan as dp
from asterisk_cube.agi.entry import EntryRoute
from asterisk_cube.agi.entry_config import EntryConfigCache
from asterisk_cube.agi.verdict_log import VerdictLog
from asterisk_cube.config import load_settings
from asterisk_cube.core.spoken import NB_WEEKDAYS, next_open_words
from asterisk_cube.core.weekly import DAYS
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import answering
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime

pytestmark = pytest.mark.integration

UAC_REJECTED = SCENARIOS / "uac_rejected.xml"
OPEN_DID = "4733000001"
CLOSED_DID = "4733000002"
NORWEGIAN_CLOSED_DID = "4733000003"
MIDNIGHT_DID = "4733000004"  # a Norwegian client that opens at 00:00: "klokken null null"
BLOCKED_NUMBER = "+4781555000"


def not_today_hours(zone: str, opens: str = "08:00") -> str:
    """Hours on the weekday two days from now (local): closed now, whatever the time."""
    today = dt.datetime.now(ZoneInfo(zone)).weekday()
    return f"{DAYS[(today + 2) % 7]} {opens}-16:00"


@pytest.fixture
async def entry(sandbox, tmp_path):
    env = {**sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        open_client = p.add_client(
            s, "Open AS", hours="mon-sun 00:00-24:00", adblock=True, tone="formal"
        )
        open_client.language = "en"
        closed = p.add_client(
            s,
            "Closed AS",
            hours=not_today_hours("Europe/Oslo"),
            closed_handling="announce",
            tone="informal",
        )
        closed.language = "en"
        stengt = p.add_client(
            s,
            "Stengt AS",
            hours=not_today_hours("Europe/Oslo", opens="08:30"),
            closed_handling="announce",
            tone="formal",
        )
        stengt.language = "nb"
        midnatt = p.add_client(
            s,
            "Midnatt AS",
            hours=not_today_hours("Europe/Oslo", opens="00:00"),
            closed_handling="announce",
            tone="formal",
        )
        midnatt.language = "nb"
        p.add_line(s, OPEN_DID, "Open AS", client="Open AS")
        p.add_line(s, CLOSED_DID, "Closed AS", client="Closed AS")
        p.add_line(s, NORWEGIAN_CLOSED_DID, "Stengt AS", client="Stengt AS")
        p.add_line(s, MIDNIGHT_DID, "Midnatt AS", client="Midnatt AS")
        answering.add_blocks(s, [BLOCKED_NUMBER], client="Open AS", reason="test")
        text = dp.render(s, settings)
        ids = {
            "open": open_client.id,
            "closed": closed.id,
            "stengt": stengt.id,
            "midnatt": midnatt.id,
        }
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    await asyncio.to_thread(dp.install, text, settings)

    decisions: list[tuple[int, str]] = []
    hours = []  # the hours verdict of each decision

    def decided(client_id, decision):
        decisions.append((client_id, decision.action.value))
        hours.append(decision.hours)

    cache = EntryConfigCache(sessions)
    verdicts = VerdictLog(sessions, delay=0.05)
    route = EntryRoute(cache, verdicts, on_decision=decided)
    runtime = build_runtime(
        settings, agi_routes={"entry": route.handle}, install_signal_handlers=False
    )
    task = asyncio.create_task(runtime.run())
    await until(
        lambda: runtime.state.supervisor is not None and runtime.state.supervisor.connected,
        what="ARI connected",
    )
    log_start = sandbox.log_file.stat().st_size if sandbox.log_file.exists() else 0
    yield {
        "sessions": sessions,
        "ids": ids,
        "lines": lines,
        "decisions": decisions,
        "hours": hours,
        "verdicts": verdicts,
        "log": lambda: sandbox.log_file.read_text(errors="replace")[log_start:],
    }
    runtime.request_stop("test")
    assert await asyncio.wait_for(task, 15) == 0
    await verdicts.close()


def rejected_caller(sandbox, number: str, trace_dir: Path, caller_id: str, slot: int = 0) -> Sipp:
    return Sipp(
        UAC_REJECTED,
        sandbox.carrier_ports[slot],
        trace_dir,
        remote=f"127.0.0.1:{sandbox.sip_port}",
        service=number,
        sets={"caller": caller_id},
        calls=1,
    )


def calls(sessions) -> list[m.Call]:
    with sessions() as s:
        return list(s.scalars(select(m.Call).order_by(m.Call.id)))


def verdict_rows(sessions) -> list[tuple[int, str, bool, str]]:
    with sessions() as s:
        return [
            (v.client_id, v.caller, v.blocked, v.reason)
            for v in s.scalars(select(m.AdblockVerdict).order_by(m.AdblockVerdict.id))
        ]


async def test_inside_hours_the_call_reaches_the_stasis_queue(entry, sandbox, tmp_path):
    sessions, ids = entry["sessions"], entry["ids"]
    sipp = caller(sandbox, OPEN_DID, tmp_path / "caller", caller_id="91234567", hold_ms=2500)
    sipp.start()
    waiting = await until(lambda: calls(sessions), what="the call to be queued")
    result = await asyncio.to_thread(sipp.wait, 30)
    assert result.ok, result.summary()
    [call] = waiting
    assert call.kind == m.CallKind.ANSWERING and call.client_id == ids["open"]
    assert call.line_id == entry["lines"][OPEN_DID] and call.caller_number == "91234567"
    assert entry["decisions"] == [(ids["open"], "queue")]
    await until(lambda: verdict_rows(sessions), what="the verdict row")
    assert verdict_rows(sessions) == [(ids["open"], "+4791234567", False, "no_match")]


@pytest.mark.parametrize(
    ("caller_id", "logged", "reason"),
    [("81555000", BLOCKED_NUMBER, "client_blocklist"), ("anonymous", "anonymous", "anonymous")],
    ids=["blocklisted", "anonymous"],
)
async def test_advertising_is_rejected_with_the_message_and_logged(
    entry, sandbox, tmp_path, caller_id, logged, reason
):
    sessions, ids = entry["sessions"], entry["ids"]
    started = time.monotonic()
    result = await asyncio.to_thread(
        rejected_caller(sandbox, OPEN_DID, tmp_path / "rejected", caller_id).run, 60
    )
    heard = time.monotonic() - started
    assert result.ok, result.summary()  # 403 after early media, never a 200
    assert "183 Session Progress" in result.messages()
    assert heard > 4, f"rejected after {heard:.1f} s: the message was not played"
    assert "Playing 'asterisk-cube/formal/blocked" in entry["log"]()
    await until(lambda: verdict_rows(sessions), what="the verdict row")
    assert verdict_rows(sessions) == [(ids["open"], logged, True, reason)]
    assert entry["decisions"] == [(ids["open"], "reject")]
    assert calls(sessions) == []  # never reached the queue (or an agent)


async def test_outside_hours_announce_plays_the_closed_prompts_and_hangs_up(
    entry, sandbox, tmp_path
):
    sessions, ids = entry["sessions"], entry["ids"]
    sipp = caller(sandbox, CLOSED_DID, tmp_path / "caller", caller_id="91234567", hold_ms=60_000)
    started = time.monotonic()
    result = await asyncio.to_thread(sipp.run, 90)
    took = time.monotonic() - started
    assert result.ok, result.summary()
    assert took < 55, "Asterisk should hang up after the announcement, not the caller"
    assert "BYE sip:" in result.messages()  # Asterisk's BYE, received by SIPp
    log = entry["log"]()
    for prompt in ("closed", "next-open", "goodbye"):
        assert f"Playing 'asterisk-cube/informal/{prompt}" in log, prompt
    assert "Playing 'digits/at" in log  # SayUnixTime spoke the next opening
    assert entry["decisions"] == [(ids["closed"], "announce")]
    assert calls(sessions) == []
    assert verdict_rows(sessions) == []  # ad-blocking is off for this client


@pytest.mark.parametrize(
    ("did", "client", "clock"),
    [
        (NORWEGIAN_CLOSED_DID, "stengt", ("8", "30")),  # klokken åtte tretti
        (MIDNIGHT_DID, "midnatt", ("0", "0")),  # klokken null null (was null null null)
    ],
    ids=["08:30", "midnight"],
)
async def test_outside_hours_a_norwegian_caller_hears_when_we_open_in_norwegian(
    entry, sandbox, tmp_path, did, client, clock
):
    sessions, ids = entry["sessions"], entry["ids"]
    sipp = caller(sandbox, did, tmp_path / "caller", caller_id="91234567", hold_ms=60_000)
    started = time.monotonic()
    result = await asyncio.to_thread(sipp.run, 90)
    took = time.monotonic() - started
    assert result.ok, result.summary()
    assert took < 55, "Asterisk should hang up after the announcement, not the caller"
    assert "BYE sip:" in result.messages()
    assert entry["decisions"] == [(ids[client], "announce")]
    [verdict] = entry["hours"]
    # Opens on the weekday two days on: "Vi åpner igjen <weekday> klokken åtte tretti"
    # ("i morgen" only if the Oslo date turned between provisioning and the call).
    words = next_open_words(verdict.next_open, verdict.local_time, "nb")
    assert words[1:] == ("words/klokken", *(f"words/{w}" for w in clock))
    assert words[0].removeprefix("words/") in (*NB_WEEKDAYS, "i-morgen")
    files = "&".join(f"asterisk-cube/nb/formal/{w}" for w in words)
    log = entry["log"]()
    # The dialplan got the words from the channel variable and handed them to one Playback ...
    assert 'Playback("PJSIP/carrier-' in log, "no Playback of the next opening"
    assert f', "asterisk-cube/nb/formal/next-open&{files}") in new stack' in log
    # ... and Asterisk played every file, in order, between "closed" and "goodbye".
    prompts = ["closed", "next-open", *words, "goodbye"]
    played = [line for line in log.splitlines() if "Playing 'asterisk-cube/nb/formal/" in line]
    heard = [line.split("asterisk-cube/nb/formal/")[1].split(".gsm")[0] for line in played]
    assert heard == prompts
    assert "digits/" not in log  # no SayUnixTime (English digits) for a Norwegian client
    assert calls(sessions) == []
