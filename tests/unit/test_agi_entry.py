"""FastAGI ``entry`` route: decisions set on the channel, verdicts logged, and the client
configuration cache invalidated when another process changes the configuration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from support.clocks import FakeClock as Clock

from asterisk_cube.agi.entry import EntryRoute
from asterisk_cube.agi.entry_config import EntryConfigCache, config_fingerprint, load_client_config
from asterisk_cube.agi.server import AgiServer
from asterisk_cube.agi.session import AgiResult
from asterisk_cube.agi.verdict_log import VerdictLog
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p

# Monday 23 November 2026, 10:00 in Oslo.
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY_20 = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
CHRISTMAS = datetime(2026, 12, 25, 9, 0, tzinfo=UTC)  # a Friday, national holiday in Norway


class FakeAgi:
    """The route's view of an AGI session; records commands, answers like Asterisk."""

    def __init__(
        self, caller="4791234567", params=None, args=(), variables=None, mset=True, pres="0"
    ):
        self.caller_number = caller
        self.caller_presentation = pres
        self.channel = "PJSIP/carrier-00000001"
        self.params = dict(params or {})
        self.args = list(args)
        self.variables = dict(variables or {})
        self.commands: list[str] = []
        self.mset = mset

    async def get_variable(self, name):
        self.commands.append(f"GET {name}")
        return self.variables.get(name)

    async def set_variable(self, name, value):
        self.commands.append(f"SET {name}")
        self.variables[name] = str(value)

    async def exec(self, application, *args):
        self.commands.append(f"EXEC {application}")
        if application != "MSet" or not self.mset:
            return AgiResult(200, "-2", "", {}, "200 result=-2")
        for pair in args:
            name, _, value = pair.partition("=")
            self.variables[name] = value
        return AgiResult(200, "0", "", {}, "200 result=0")


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db):
    return make_sessionmaker(make_engine(db))


@pytest.fixture
def other_process(db):
    """A second engine on the same file: stands for the CLI changing the configuration."""
    return make_sessionmaker(make_engine(db))


def add_client(sessions, name="Acme", **kwargs):
    defaults = {"hours": "mon-fri 08:00-16:00", "adblock": True, "holiday_country": "NO"}
    with transaction(sessions) as s:
        return p.add_client(s, name, **{**defaults, **kwargs}).id


def block(sessions, number, client_id=None, kind="exact", advertiser=False):
    with transaction(sessions) as s:
        s.add(
            m.BlocklistEntry(
                client_id=client_id,
                number=number,
                kind=m.MatchKind(kind),
                known_advertiser=advertiser,
            )
        )


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def setup(sessions, clock):
    def make(now=MONDAY_10):
        cache = EntryConfigCache(sessions, monotonic=clock, now=lambda: now)
        verdicts = VerdictLog(sessions, delay=0.01)
        return EntryRoute(cache, verdicts, now=lambda: now), cache, verdicts

    return make


def verdict_rows(sessions):
    with sessions() as s:
        return [
            (r.client_id, r.caller, r.blocked, r.reason)
            for r in s.scalars(select(m.AdblockVerdict).order_by(m.AdblockVerdict.id))
        ]


# --- decisions -------------------------------------------------------------------------------


async def test_inside_hours_the_call_is_queued_in_one_round_trip(sessions, setup):
    cid = add_client(sessions)
    route, _cache, verdicts = setup()
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert agi.commands == ["EXEC MSet"]
    v = agi.variables
    assert (v["CUBE_ACTION"], v["CUBE_HOURS"], v["CUBE_TONE"]) == ("queue", "open", "formal")
    assert (v["CUBE_ADBLOCK"], v["CUBE_ADBLOCK_REASON"]) == ("allow", "no_match")
    assert v["CUBE_PROMPTS"] == "asterisk-cube/nb/formal"
    assert v["CUBE_NEXT_OPEN"] == "" and v["CUBE_TZ"] == "Europe/Oslo"
    await verdicts.flush()
    assert verdict_rows(sessions) == [(cid, "+4791234567", False, "no_match")]


async def test_client_blocklist_prefix_rejects_and_logs_the_reason(sessions, setup):
    cid = add_client(sessions)
    block(sessions, "+4781", client_id=cid, kind="prefix")
    route, _, verdicts = setup()
    agi = FakeAgi(caller="81 55 12 34", params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "reject"
    assert agi.variables["CUBE_ADBLOCK_REASON"] == "client_blocklist"
    await verdicts.flush()
    assert verdict_rows(sessions) == [(cid, "+4781551234", True, "client_blocklist")]


@pytest.mark.parametrize("caller", ["", "anonymous", "Anonymous", "0000"])
async def test_withheld_caller_is_rejected_when_the_client_blocks_anonymous(
    sessions, setup, caller
):
    cid = add_client(sessions)
    route, _, verdicts = setup()
    agi = FakeAgi(caller=caller, params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "reject"
    await verdicts.flush()
    [(client, _logged, blocked, reason)] = verdict_rows(sessions)
    assert (client, blocked, reason) == (cid, True, "anonymous")


@pytest.mark.parametrize("presentation", ["32", "35", "67"])  # prohibited, unavailable
async def test_a_number_withheld_by_its_presentation_is_anonymous(sessions, setup, presentation):
    """Privacy: id with the real number in a trusted P-Asserted-Identity: Asterisk gives the
    number with a restricted presentation (agi_callingpres). It is blocked as anonymous and
    the number is stored nowhere."""
    cid = add_client(sessions)
    route, _, verdicts = setup()
    agi = FakeAgi(caller="4791234567", params={"client": str(cid)}, pres=presentation)
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "reject"
    await verdicts.flush()
    assert verdict_rows(sessions) == [(cid, "anonymous", True, "anonymous")]


async def test_an_allowed_presentation_keeps_the_number(sessions, setup):
    cid = add_client(sessions)
    route, _, verdicts = setup()
    agi = FakeAgi(caller="4791234567", params={"client": str(cid)}, pres="0")
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "queue"
    await verdicts.flush()
    assert verdict_rows(sessions) == [(cid, "+4791234567", False, "no_match")]


async def test_global_lists_and_known_advertisers_apply_to_every_client(sessions, setup):
    cid = add_client(sessions)
    block(sessions, "+4790000001", advertiser=True)
    block(sessions, "+4622", kind="prefix")
    route, _, verdicts = setup()
    for caller, reason in (
        ("90000001", "known_advertiser"),
        ("+46 22 33 44 55", "global_blocklist"),
    ):
        agi = FakeAgi(caller=caller, params={"client": str(cid)})
        await route(agi)
        assert (agi.variables["CUBE_ACTION"], agi.variables["CUBE_ADBLOCK_REASON"]) == (
            "reject",
            reason,
        )
    await verdicts.flush()
    assert [r[3] for r in verdict_rows(sessions)] == ["known_advertiser", "global_blocklist"]


async def test_adblock_disabled_queues_everyone_and_logs_nothing(sessions, setup):
    cid = add_client(sessions, adblock=False)
    block(sessions, "+4790000001", advertiser=True)
    route, _, verdicts = setup()
    agi = FakeAgi(caller="", params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "queue"
    assert agi.variables["CUBE_ADBLOCK_REASON"] == "disabled"
    await verdicts.flush()
    assert verdict_rows(sessions) == []


async def test_closed_with_announce_handling_announces_the_next_opening(sessions, setup):
    cid = add_client(sessions, closed_handling="announce", tone="informal")
    route, _, _ = setup(now=MONDAY_20)
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    v = agi.variables
    assert (v["CUBE_ACTION"], v["CUBE_HOURS"], v["CUBE_TONE"]) == ("announce", "closed", "informal")
    assert v["CUBE_NEXT_OPEN"] == "2026-11-24T07:00:00+00:00"  # Tuesday 08:00 in Oslo
    assert v["CUBE_NEXT_OPEN_EPOCH"] == str(int(datetime(2026, 11, 24, 7, tzinfo=UTC).timestamp()))
    assert v["CUBE_PROMPTS"] == "asterisk-cube/nb/informal"
    assert v["CUBE_SAY_TIME"] == "no"  # Asterisk has no Norwegian digits
    # ... so the time comes as our own word prompts: "i morgen klokka åtte".
    words = "asterisk-cube/nb/informal/words/"
    assert v["CUBE_NEXT_OPEN_FILES"] == f"{words}i-morgen&{words}klokken&{words}8"
    assert agi.commands == ["EXEC MSet"]  # still one round trip


async def test_announced_holiday_says_the_weekday_of_the_next_opening(sessions, setup):
    cid = add_client(sessions, closed_handling="announce", hours="mon-fri 08:30-16:00")
    route, _, _ = setup(now=CHRISTMAS)  # Friday; Saturday 26th is a holiday too
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    words = "asterisk-cube/nb/formal/words/"
    assert agi.variables["CUBE_NEXT_OPEN_FILES"] == (
        f"{words}mandag&{words}klokken&{words}8&{words}30"
    )


async def test_next_open_files_only_for_announced_closures_in_languages_with_words(sessions, setup):
    note = add_client(sessions, "Note AS", closed_handling="note")
    english = add_client(sessions, "English AS", closed_handling="announce")
    with transaction(sessions) as s:
        s.get(m.Client, english).language = "en"
    route, _, _ = setup(now=MONDAY_20)
    for cid, action in ((note, "queue"), (english, "announce")):
        agi = FakeAgi(params={"client": str(cid)})
        await route(agi)
        assert agi.variables["CUBE_ACTION"] == action
        assert "CUBE_NEXT_OPEN_FILES" not in agi.variables
    assert agi.variables["CUBE_SAY_TIME"] == "yes"  # English: SayUnixTime


async def test_closed_with_note_handling_still_queues(sessions, setup):
    cid = add_client(sessions, closed_handling="note")
    route, _, _ = setup(now=MONDAY_20)
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert (agi.variables["CUBE_ACTION"], agi.variables["CUBE_HOURS"]) == ("queue", "closed")


async def test_national_holiday_and_special_days(sessions, setup):
    cid = add_client(sessions, closed_handling="announce")
    with transaction(sessions) as s:
        p.add_special_day(s, "Acme", "2026-11-23", "Inventory")
    route, _, _ = setup(now=CHRISTMAS)
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert (agi.variables["CUBE_ACTION"], agi.variables["CUBE_HOURS"]) == ("announce", "holiday")
    route, _, _ = setup(now=MONDAY_10)
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_HOURS"] == "holiday"  # the client's own closed day


async def test_english_client_gets_the_default_prompt_set(sessions, setup):
    cid = add_client(sessions)
    with transaction(sessions) as s:
        s.get(m.Client, cid).language = "en"
    route, _, _ = setup()
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_PROMPTS"] == "asterisk-cube/formal"
    assert agi.variables["CUBE_SAY_TIME"] == "yes"


# --- where the client id comes from, failures ------------------------------------------------


async def test_client_id_from_argument_or_channel_variable(sessions, setup):
    cid = add_client(sessions)
    route, _, _ = setup()
    by_arg = FakeAgi(args=[str(cid)])
    await route(by_arg)
    assert by_arg.variables["CUBE_ACTION"] == "queue"
    assert by_arg.commands == ["EXEC MSet"]
    by_var = FakeAgi(variables={"CUBE_CLIENT": str(cid)})
    await route(by_var)
    assert by_var.commands == ["GET CUBE_CLIENT", "EXEC MSet"]
    assert by_var.variables["CUBE_HOURS"] == "open"


@pytest.mark.parametrize("agi_kwargs", [{}, {"params": {"client": "999"}}, {"args": ["x"]}])
async def test_missing_or_unknown_client_fails_open(sessions, setup, agi_kwargs):
    add_client(sessions)
    route, _, _ = setup()
    agi = FakeAgi(**agi_kwargs)
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "queue"
    assert route.failures == 1


async def test_without_mset_each_variable_is_set(sessions, setup):
    cid = add_client(sessions)
    route, _, _ = setup()
    agi = FakeAgi(params={"client": str(cid)}, mset=False)
    await route(agi)
    assert agi.commands[0] == "EXEC MSet"
    assert "SET CUBE_ACTION" in agi.commands and "SET CUBE_PROMPTS" in agi.commands
    assert agi.variables["CUBE_ACTION"] == "queue"


async def test_database_down_on_a_cache_miss_fails_open_and_on_a_hit_keeps_serving(
    sessions, setup, clock, monkeypatch
):
    cid = add_client(sessions)
    route, _, _ = setup()
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)  # cached now

    def broken(self, fn):
        raise ConnectionError("database is down")

    monkeypatch.setattr(EntryConfigCache, "_run", broken)
    clock.t += 5  # a fingerprint check is due and fails
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "queue" and agi.variables["CUBE_HOURS"] == "open"
    assert route.failures == 0
    agi = FakeAgi(params={"client": str(cid + 1)})  # not cached: cannot load
    await route(agi)
    assert agi.variables == {"CUBE_ACTION": "queue"}
    assert route.failures == 1


# --- the cache ---------------------------------------------------------------------------


async def test_config_is_loaded_once_and_concurrent_calls_share_the_load(sessions, setup):
    cid = add_client(sessions)
    route, cache, _ = setup()
    agis = [FakeAgi(params={"client": str(cid)}) for _ in range(50)]
    await asyncio.gather(*(route(a) for a in agis))
    assert {a.variables["CUBE_ACTION"] for a in agis} == {"queue"}
    assert cache.loads == 1
    assert cache.checks == 1


async def test_changes_by_another_process_are_seen_after_the_check_interval(
    sessions, other_process, setup, clock
):
    cid = add_client(sessions)
    route, cache, _ = setup()

    async def action(caller="4791234567"):
        agi = FakeAgi(caller=caller, params={"client": str(cid)})
        await route(agi)
        return agi.variables

    assert (await action())["CUBE_ACTION"] == "queue"
    # The CLI (another engine) closes the client on Mondays and makes it announce.
    with transaction(other_process) as s:
        p.set_client_hours(s, "Acme", "tue-fri 08:00-16:00")
        p.get_client(s, "Acme").closed_handling = m.ClosedHandling.ANNOUNCE
    clock.t += 0.5
    assert (await action())["CUBE_ACTION"] == "queue"  # within the interval: cached
    clock.t += 0.6
    assert (await action())["CUBE_ACTION"] == "announce"
    assert cache.loads == 2

    # A new global blocklist entry (no client row changes) is noticed too.
    block(other_process, "+4791234567")
    clock.t += 1.1
    changed = await action()
    assert (changed["CUBE_ACTION"], changed["CUBE_ADBLOCK_REASON"]) == (
        "reject",
        "global_blocklist",
    )

    # Removing it as well.
    with transaction(other_process) as s:
        s.delete(s.scalars(select(m.BlocklistEntry)).one())
    clock.t += 1.1
    assert (await action())["CUBE_ADBLOCK_REASON"] == "no_match"

    # A tone change only touches the clients row (updated_at).
    with transaction(other_process) as s:
        p.get_client(s, "Acme").tone = m.Tone.INFORMAL
    clock.t += 1.1
    assert (await action())["CUBE_TONE"] == "informal"


async def test_unchanged_configuration_is_not_reloaded(sessions, setup, clock):
    cid = add_client(sessions)
    route, cache, _ = setup()
    for _ in range(5):
        await route(FakeAgi(params={"client": str(cid)}))
        clock.t += 2
    assert cache.checks == 5 and cache.loads == 1


async def test_invalidate_drops_entries_at_once(sessions, setup):
    cid = add_client(sessions)
    route, cache, _ = setup()
    await route(FakeAgi(params={"client": str(cid)}))
    with transaction(sessions) as s:
        p.get_client(s, "Acme").tone = m.Tone.INFORMAL
    cache.invalidate(cid)
    agi = FakeAgi(params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_TONE"] == "informal"


async def test_a_new_year_reloads_national_holidays(sessions, clock):
    cid = add_client(sessions)
    now = [datetime(2026, 12, 31, 12, tzinfo=UTC)]
    cache = EntryConfigCache(sessions, monotonic=clock, now=lambda: now[0])
    first = await cache.get(cid)
    assert first.years == (2025, 2026, 2027)
    now[0] = datetime(2027, 1, 2, 12, tzinfo=UTC)
    second = await cache.get(cid)
    assert second.years == (2026, 2027, 2028) and cache.loads == 2


def test_fingerprint_changes_with_every_kind_of_change(sessions):
    def fp():
        with sessions() as s:
            return config_fingerprint(s)

    seen = [fp()]
    cid = add_client(sessions)
    seen.append(fp())
    with transaction(sessions) as s:
        p.set_client_hours(s, "Acme", "mon-fri 09:00-15:00")
    seen.append(fp())
    with transaction(sessions) as s:
        p.add_special_day(s, "Acme", "2026-12-24", hours="09:00-12:00")
    seen.append(fp())
    block(sessions, "+4790000001", client_id=cid)
    seen.append(fp())
    assert len(set(seen)) == len(seen)


def test_load_client_config_compiles_hours_and_lists(sessions):
    cid = add_client(sessions)
    block(sessions, "+4781", client_id=cid, kind="prefix")
    with transaction(sessions) as s:
        p.add_special_day(s, "Acme", "2026-12-24", "Christmas Eve", hours="09:00-12:00")
    with sessions() as s:
        config = load_client_config(s, cid, MONDAY_10)
        assert load_client_config(s, cid + 1, MONDAY_10) is None
    assert config.adblock.enabled and config.adblock.blocklist.prefixes == {"+4781"}
    assert config.hours.plan(datetime(2026, 12, 24).date()).intervals[0].opens.hour == 9
    assert config.hours.plan(datetime(2026, 12, 25).date()).name  # 1. juledag


# --- verdict log -------------------------------------------------------------------------


async def test_verdicts_are_written_in_batches_by_themselves(sessions, setup):
    cid = add_client(sessions)
    route, _, verdicts = setup()
    await asyncio.gather(
        *(route(FakeAgi(caller="", params={"client": str(cid)})) for _ in range(20))
    )
    for _ in range(500):
        if verdicts.written == 20:
            break
        await asyncio.sleep(0.01)
    assert len(verdict_rows(sessions)) == 20


async def test_failed_verdict_writes_are_kept_and_retried(sessions, setup, monkeypatch):
    cid = add_client(sessions)
    route, _, verdicts = setup()
    real = VerdictLog._write
    calls = {"n": 0}

    def flaky(self, rows):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database is down")
        real(self, rows)

    monkeypatch.setattr(VerdictLog, "_write", flaky)
    await route(FakeAgi(caller="", params={"client": str(cid)}))
    assert await verdicts.flush() == 0
    assert await verdicts.flush() == 1
    await verdicts.close()
    assert len(verdict_rows(sessions)) == 1


# --- over a real socket with the AGI server -----------------------------------------------


async def test_route_through_the_agi_server(sessions, setup):
    cid = add_client(sessions)
    route, _, _ = setup()
    server = AgiServer("127.0.0.1", 0)
    server.add_route("entry", route.handle)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        env = {
            "agi_network": "yes",
            "agi_network_script": f"entry?client={cid}&line=3",
            "agi_channel": "PJSIP/carrier-00000001",
            "agi_callerid": "4791234567",
        }
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        await writer.drain()
        line = (await asyncio.wait_for(reader.readline(), 2)).decode()
        assert line.startswith('EXEC MSet "CUBE_ACTION=queue,CUBE_HOURS=open,CUBE_TONE=formal,')
        writer.write(b"200 result=0\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        await server.close(grace=0.1)


async def test_blocklist_provisioning_reaches_a_running_cache(
    sessions, other_process, setup, clock
):
    from asterisk_cube.services import answering

    cid = add_client(sessions)
    route, _, _ = setup()
    agi = FakeAgi(caller="81555000", params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ACTION"] == "queue"
    with transaction(other_process) as s:
        answering.add_blocks(s, ["815*"], client="Acme")
    clock.t += 1.1
    agi = FakeAgi(caller="81555000", params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ADBLOCK_REASON"] == "client_blocklist"


# --- memos: reuse only while a verdict cannot change ----------------------------------------


def test_hours_memo_changes_exactly_at_closing_and_at_midnight():
    from datetime import date

    from asterisk_cube.agi.entry_config import HoursMemo
    from asterisk_cube.core.hours import DayOverride, Schedule

    schedule = Schedule.build(
        "Europe/Oslo",
        {d: ["08:00-16:00"] for d in range(5)},
        [DayOverride(date(2026, 11, 24), (), "Client day", holiday=True)],
    )
    memo = HoursMemo()
    oslo = ZoneInfo("Europe/Oslo")

    def at(day, hh, mm=0, ss=0):
        return memo.at(schedule, datetime(2026, 11, day, hh, mm, ss, tzinfo=oslo)).status.value

    assert at(23, 10) == "open"
    assert at(23, 15, 59, 59) == "open"
    assert at(23, 16) == "closed"
    assert at(23, 23, 59, 59) == "closed"
    assert at(24, 0, 0, 1) == "holiday"  # same "not open" period, but a new day
    assert at(25, 8) == "open"
    assert at(23, 12) == "open"  # time going backwards (tests) is recomputed too


async def test_repeat_callers_reuse_the_verdict_until_the_config_changes(sessions, setup, clock):
    cid = add_client(sessions)
    route, cache, _ = setup()
    for _ in range(3):
        await route(FakeAgi(caller="91234567", params={"client": str(cid)}))
    config = await cache.get(cid)
    assert config.verdicts.hits == 2
    block(sessions, "+4791234567", client_id=cid)
    clock.t += 1.1
    agi = FakeAgi(caller="91234567", params={"client": str(cid)})
    await route(agi)
    assert agi.variables["CUBE_ADBLOCK_REASON"] == "client_blocklist"


async def test_verdict_component_flushes_when_serve_stops(sessions, setup):
    cid = add_client(sessions)
    route, _, _ = setup()
    verdicts = VerdictLog(sessions, delay=60)  # would not write by itself for a minute
    route.verdicts = verdicts
    task = asyncio.create_task(verdicts.component())
    await route(FakeAgi(caller="", params={"client": str(cid)}))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(verdict_rows(sessions)) == 1


# --- the warm path and the verdict insert ----------------------------------------------


async def test_warm_path_serves_only_what_get_would_return(sessions, other_process, clock):
    """``warm()`` (the per-call path, no await) answers only while no fingerprint check is
    due, both entries are cached and the year is covered; else the caller awaits ``get()``,
    which checks and reloads. A change by another process is thus seen after the interval."""
    cid = add_client(sessions)
    cache = EntryConfigCache(sessions, monotonic=clock, now=lambda: MONDAY_10)
    assert cache.warm(cid, MONDAY_10) is None  # nothing checked or loaded yet
    config = await cache.get(cid)
    assert cache.warm(cid, MONDAY_10) is None  # the global lists are not loaded yet
    shared = await cache.global_lists()
    assert cache.warm(cid, MONDAY_10) == (config, shared)
    assert cache.warm(cid + 1, MONDAY_10) is None  # another client: not cached
    assert cache.warm(cid, datetime(2027, 1, 2, tzinfo=UTC)) is None  # a new year

    with transaction(other_process) as s:
        p.get_client(s, "Acme").tone = m.Tone.INFORMAL
    clock.t += 0.9
    assert cache.warm(cid, MONDAY_10) == (config, shared)  # within the check interval
    clock.t += 0.2
    assert cache.warm(cid, MONDAY_10) is None  # a check is due: no answer without it
    assert (await cache.get(cid)).tone.value == "informal"
    assert cache.warm(cid, MONDAY_10) is None  # reloaded client, global lists dropped too
    await cache.global_lists()
    assert cache.warm(cid, MONDAY_10)[0].tone.value == "informal"

    cache.invalidate(cid)
    assert cache.warm(cid, MONDAY_10) is None


async def written_verdicts_round_trip(sessions) -> None:
    """Two verdicts through the route and the batch insert; stored exactly as SQLAlchemy's
    own insert stores the same values (what the reports compare and sort on), and read back
    as the same aware instants."""
    from sqlalchemy import text

    name = f"Verdicts {id(sessions)}"
    cid = add_client(sessions, name=name)
    now = datetime(2026, 11, 23, 9, 0, 0, 0, tzinfo=UTC)  # whole second: microseconds 0
    later = datetime(2026, 11, 23, 10, 30, 15, 250, tzinfo=ZoneInfo("Europe/Oslo"))
    route = EntryRoute(EntryConfigCache(sessions), VerdictLog(sessions, delay=60), now=lambda: now)
    await route(FakeAgi(caller="", params={"client": str(cid)}))
    route.now = lambda: later
    await route(FakeAgi(caller="+46 8 123 456 78", params={"client": str(cid)}))
    assert await route.verdicts.flush() == 2
    expected = [
        (now, "", True, "anonymous"),
        (later.astimezone(UTC), "+46812345678", False, "no_match"),
    ]
    with transaction(sessions) as s:  # the same rows the ordinary way, for comparison
        s.execute(
            m.AdblockVerdict.__table__.insert(),
            [
                dict(zip(("at", "caller", "blocked", "reason"), row, strict=True), client_id=cid)
                for row in expected
            ],
        )
    with sessions() as s:
        rows = s.scalars(
            select(m.AdblockVerdict)
            .where(m.AdblockVerdict.client_id == cid)
            .order_by(m.AdblockVerdict.id)
        ).all()
        got = [(r.at, r.caller, r.blocked, r.reason) for r in rows]
        raw = s.execute(
            text(
                "SELECT at, caller, blocked, reason FROM adblock_verdicts WHERE client_id = :c"
                " ORDER BY id"
            ),
            {"c": cid},
        ).all()
    assert got == expected + expected
    assert raw[:2] == raw[2:]  # stored values, before any conversion on the way out


async def test_verdict_rows_keep_instant_caller_and_reason(sessions):
    """The batch insert bypasses SQLAlchemy's per-row parameter handling but not the
    columns' own conversions: instants come back as the same aware UTC datetimes."""
    await written_verdicts_round_trip(sessions)
