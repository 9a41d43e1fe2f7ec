"""The dialer loop's steps and claims: what a step costs, claims off the event loop, a
claim that lands after its campaign stopped, commit order, and stopping."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import event, select
from support.dialer import (
    Clock,
    dialer_world,
    make,
    ready,
    record_if_on_loop,
    run_until,
    settled,
    statuses,
)

from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.services import provisioning as p

#: The loop tests run on looptime's fast-forwarding event loop: sleeps, timeouts and the
#: dialer's budgets (0.1-0.3 s here) are measured on the loop's fake clock, which moves only
#: when every task waits, so a busy machine cannot make them run out (issue #11 item 11).
pytestmark = pytest.mark.looptime


@pytest.fixture
def world(tmp_path):
    return dialer_world(tmp_path)


async def test_a_step_without_due_callbacks_costs_no_callback_claim_per_free_agent(world):
    """Every free agent used to cost a claim statement of its own for callbacks, on every
    step, in every campaign (most of the event loop's time in the opening burst of the day
    test): one look says none are due."""
    sessions, agents = world
    dialer, distributor, _tel, _cid = make(world, "power", [], max_attempts=1)
    await ready(distributor, agents)
    engine = sessions.kw["bind"]
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE CONTACTS"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        dialer.step()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(updates) <= 1, f"{len(updates)} claim statements for {len(agents)} free agents"


async def test_a_burst_of_wake_ups_is_one_step_not_one_each(world):
    """Every agent change wakes the dialer: in a burst they collapse into a few steps."""
    dialer, _distributor, _tel, _cid = make(world, "power", [])
    dialer.tick, dialer.coalesce = 1.0, 0.05
    task = asyncio.create_task(dialer.run())
    try:
        while not dialer.step_seconds.count:
            await asyncio.sleep(0.001)
        before = dialer.step_seconds.count
        for _ in range(40):  # 40 wake-ups within 40 ms
            dialer.wake()
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.06)
        steps = dialer.step_seconds.count - before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert 1 <= steps <= 3, steps


async def test_pool_claims_run_off_the_event_loop(world, monkeypatch):
    """Issue #13 / #11 item 11: the power/predictive claims (many contacts, the dialer's
    biggest DB work: 17 % of the loop's samples in the e2e day's opening burst) ran on
    the event loop, delaying every StasisStart behind them; they run in a worker thread."""
    from asterisk_cube.dialer import rounds

    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(4)]
    dialer, distributor, tel, cid = make(
        world, "power", phones, max_attempts=1, offload=asyncio.to_thread
    )
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    on_loop = record_if_on_loop(monkeypatch, rounds, "claim_contacts")
    await ready(distributor, agents[:2])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    assert statuses(sessions, cid) == ["done"] * 4 and len(tel.bridged) == 4
    assert on_loop and not any(on_loop), on_loop
    assert tel.max_live_contacts <= 2  # power: still one line per ready agent
    # what stays on the loop is measured (reload, stats); the claims are not among it,
    # nor a call's writes (dialed, bridged, finish: off the loop too since the dialer
    # day's p99 loop lag of 743 ms under load)
    kinds = set(dialer.db_on_loop_by)
    assert kinds and not kinds & {"claim", "dialed", "bridged", "agent_leg", "finish"}
    assert dialer.db_on_loop.count > 0


@pytest.mark.parametrize("what", ["campaign paused", "Asterisk lost"])
async def test_a_claim_landing_after_its_campaign_stopped_dials_nothing(world, what):
    """The claim lands after the campaign stopped (or ARI went away): its contacts go
    back, not dialed."""
    sessions, agents = world
    gate = asyncio.Event()

    async def slow(fn, /, *args, **kwargs):
        await gate.wait()
        return fn(*args, **kwargs)

    dialer, distributor, tel, cid = make(world, "power", ["+4790000001"], offload=slow)
    await ready(distributor, agents[:1])
    dialer.step()
    assert dialer.runs[cid].claiming
    if what == "campaign paused":
        with transaction(sessions) as s:
            p.set_campaign_status(s, "Out", "paused")
        dialer.refresh()
        dialer.step()  # the reload sees it stopped
    else:
        tel.connected = False
    gate.set()
    while any(t.get_name().startswith("claim-") for t in dialer.tasks):
        await asyncio.sleep(0.01)
    assert not tel.dialed and not dialer.lines
    assert statuses(sessions, cid) == ["new"]
    with transaction(sessions) as s:
        call = s.scalar(select(m.Call))
        assert (call.state, call.end_reason) == (m.CallState.FAILED, "not_dialed")


async def test_a_finished_attempt_is_committed_before_its_contact_is_offered_again(world):
    """Issue #11 item 11: a call's end is written off the event loop (the dialer day's
    loop lag p99 743 ms under load, finish the largest share). Until that write is
    committed the line stays in flight and its contact stays claimed: not dialed again
    even when its retry is due, and counted by the pacer; after the commit it is."""
    sessions, agents = world
    phone = "+4790000001"
    release = asyncio.Event()
    held: list[str] = []

    async def finish_waits(fn, /, *args, **kwargs):
        if args and args[0] == "finish" and not release.is_set():
            held.append(args[0])
            await release.wait()
        return fn(*args, **kwargs)

    clock = Clock()
    dialer, distributor, tel, cid = make(
        world, "power", [phone], clock=clock, offload=finish_waits, max_attempts=3
    )
    tel.contacts[phone] = ("busy",)
    await ready(distributor, agents[:1])
    task = asyncio.create_task(dialer.run())
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 5.0  # the loop's (fake) clock
        while not held:
            assert loop.time() < until, "the call's end was not written off the loop"
            await asyncio.sleep(0.01)
        (line,) = dialer.lines.values()
        clock.offset += dt.timedelta(hours=2)  # the busy retry (60 min) is due
        await asyncio.sleep(3.0)  # many steps and claims
        assert tel.dialed == [phone] and dialer.lines == {line.call_id: line}
        assert statuses(sessions, cid) == ["dialing"]  # still claimed in the database
        release.set()
        until = loop.time() + 5.0
        while len(tel.dialed) < 2:
            assert loop.time() < until, "not dialed again once its end was written"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with transaction(sessions) as s:
        first = s.get(m.Call, line.call_id)
        assert first.state == m.CallState.FAILED and first.end_reason == "busy"


async def test_preview_and_callback_claims_run_off_the_event_loop(world, monkeypatch):
    """Issue #11 item 11: the preview and callback claims (one contact for one agent,
    the second largest share of the dialer day's DB work on the loop) run in a worker
    thread too; the agent is held while its claim is in flight (one contact at a time)."""
    from asterisk_cube.dialer import rounds

    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(4)]
    dialer, distributor, tel, cid = make(
        world, "preview", phones, max_attempts=1, offload=asyncio.to_thread
    )
    for phone in phones:
        tel.contacts[phone] = ("answer", 0.02, 0.05)
    with transaction(sessions) as s:  # one contact has a callback due now, for agent 1
        contact = s.scalars(select(m.Contact).where(m.Contact.phone == phones[3])).one()
        rules = load_campaign(s, cid).rules
        now = dt.datetime.now(dt.UTC)
        records.apply_outcome(
            s, contact.id, Outcome.CALLBACK, rules, now, core.Callback(now, agents[0], "")
        )
    on_loop = record_if_on_loop(monkeypatch, rounds, "claim_contacts")
    await ready(distributor, agents[:2])
    # every contact done, not just "settled": the due callback counts as settled while
    # its claim is still in flight in the worker thread (failed so under load)
    await run_until(dialer, lambda: not dialer.lines and statuses(sessions, cid) == ["done"] * 4)
    assert statuses(sessions, cid) == ["done"] * 4 and len(tel.bridged) == 4
    assert on_loop and not any(on_loop), on_loop
    assert "claim" not in dialer.db_on_loop_by
    with transaction(sessions) as s:  # the callback went to its agent
        calls = s.scalars(select(m.Call).where(m.Call.contact_id == contact.id)).all()
        assert [c.agent_id for c in calls] == [agents[0]]


async def test_stopping_ends_the_lines_nobody_talks_on_and_leaves_the_talking_ones(world):
    """serve stopping (the dialer cancelled): a contact still ringing was left ringing in
    Asterisk until the originate timeout (seen after the demo's Ctrl-C); a call with an
    agent on it goes on (the next start recovers it)."""
    _sessions, agents = world
    phones = ["+4790000001", "+4790000002"]
    dialer, distributor, tel, _cid = make(world, "power", phones, max_attempts=1)
    tel.contacts[phones[0]] = ("answer", 0.01, 100.0)  # talks for long
    tel.contacts[phones[1]] = ("never",)
    await ready(distributor, agents[:2])
    task = asyncio.create_task(dialer.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (tel.bridged and len(tel.dialed) == 2):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.001)
    talking = {ch for _call, chans in tel.bridged for ch in chans}
    ringing = {ch for ch in tel.live if ch.startswith("c")} - talking
    assert ringing, tel.live
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not ringing & tel.live  # hung up
    assert talking <= tel.live  # still talking


async def test_a_step_with_no_campaign_running_reads_no_agents(world, monkeypatch):
    """An inbound-only center wakes the dialer on every agent and queue change (issue
    #19): with nothing running, a step does not build the agents' dialer pool."""
    dialer, distributor, _tel, _cid = make(world, "power", [], max_attempts=1)
    with transaction(world[0]) as s:
        p.set_campaign_status(s, "Out", "stopped")
    dialer._reload()
    assert not dialer.runs
    pools = []
    monkeypatch.setattr(distributor, "dialer_pool", lambda *a: pools.append(a) or [])
    dialer.step()
    assert pools == []
