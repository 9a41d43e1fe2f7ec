"""Inbound counters on /metrics (issue #15): offers and their outcomes per line and per
agent, answered within the service level, missed calls; and the FastAGI entry route's
sessions and decisions. The distributor and a fake telephony from test_distributor."""

import datetime as dt
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families
from support.fakes import FakeTelephony
from test_distributor import StepClock, make, settle, start_work, world

from asterisk_cube.metrics import Metrics

__all__ = ["world"]  # the fixture, reused


def scrape(state) -> dict:
    text = Metrics(state).exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_offers_answers_within_the_service_level_and_missed_calls(world):
    _, ids, lines = world
    clock = StepClock()
    d = make(world, FakeTelephony(), clock)
    d.service_level = dt.timedelta(seconds=20)
    await start_work(d, ids["ann"], [lines["100"]])
    first = d.call_arrived("ch1", lines["100"], "91000001")
    clock.tick(5)
    await d.accept(ids["ann"], first)  # answered after 5 s: within
    await settle()
    await start_work(d, ids["bob"], [lines["100"]])
    second = d.call_arrived("ch2", lines["100"], "91000002")
    await d.decline(ids["bob"], second)
    clock.tick(30)
    d.caller_left("ch2")  # gave up waiting: missed
    clock.tick(25)
    third = d.call_arrived("ch3", lines["100"], "91000003")
    clock.tick(25)
    await d.accept(d.calls[third].agent_id, third)  # answered after 25 s: not within
    await settle()

    got = scrape(SimpleNamespace(extras={"distributor": d}))
    line = ("line", "100")
    assert got[("asterisk_cube_inbound_offers_total", (line, ("outcome", "offered")))] == 3
    assert got[("asterisk_cube_inbound_offers_total", (line, ("outcome", "accepted")))] == 2
    assert got[("asterisk_cube_inbound_offers_total", (line, ("outcome", "declined")))] == 1
    assert got[("asterisk_cube_agent_offers_total", (("agent", "bob"), ("outcome", "declined")))]
    assert got[("asterisk_cube_inbound_answered_total", (line,))] == 2
    assert got[("asterisk_cube_inbound_answered_within_service_level_total", (line,))] == 1
    assert got[("asterisk_cube_inbound_missed_total", (line,))] == 1
    assert got[("asterisk_cube_service_level_threshold_seconds", ())] == 20
    await d.close()


def test_entry_route_sessions_and_decisions():
    from asterisk_cube.core.hours import HoursStatus

    agi = SimpleNamespace(
        listening=True, sessions_total=3, rejected_total=0, session_counts={}, on_session=None
    )
    state = SimpleNamespace(agi=agi, extras={})
    metrics = Metrics(state)
    entry = SimpleNamespace(on_decision=None)
    state.extras.update(metrics=metrics, entry=entry)
    metrics.attach(state)
    agi.session_counts = {("entry", "ok"): 2, ("entry", "hangup"): 1}
    agi.on_session("entry", "ok", 0.004)
    decision = SimpleNamespace(
        action=SimpleNamespace(value="reject"), hours=SimpleNamespace(status=HoursStatus.OPEN)
    )
    entry.on_decision(7, decision)
    text = metrics.exposition().decode()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = (("outcome", "ok"), ("route", "entry"))
    assert got[("asterisk_cube_agi_route_sessions_total", key)] == 2
    assert got[("asterisk_cube_agi_session_seconds_count", (("route", "entry"),))] == 1
    assert got[("asterisk_cube_entry_decisions_total", (("action", "reject"), ("hours", "open")))]


def test_entry_hook_keeps_another_listener_and_counts_once():
    from asterisk_cube.core.hours import HoursStatus

    seen = []
    entry = SimpleNamespace(on_decision=lambda client_id, decision: seen.append(client_id))
    state = SimpleNamespace(extras={"entry": entry})
    metrics = Metrics(state)
    metrics.attach(state)
    metrics.attach(state)  # serve attaches at build and again once the AGI server exists
    decision = SimpleNamespace(
        action=SimpleNamespace(value="queue"), hours=SimpleNamespace(status=HoursStatus.OPEN)
    )
    entry.on_decision(3, decision)
    assert seen == [3]
    assert metrics.entry_counts == {("queue", "open"): 1}
