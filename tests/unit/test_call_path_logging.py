"""Issue #19: a call's hot path writes no INFO log lines (each cost serve CPU per call);
the same lines are there at DEBUG, and what an agent does (login, ready) stays INFO."""

from __future__ import annotations

import logging

from support import polling
from support.fakes import FakeTelephony
from test_ari_supervisor import (  # noqa: F401  (running: a fixture)
    FakeClient,
    FakeConnector,
    channel_event,
    make_supervisor,
    running,
    stasis_start,
)
from test_distributor import make, settle, start_work, world  # noqa: F401  (fixture)

from asterisk_cube.ari.supervisor import DefaultStasisHandler

CALL_EVENTS = {"offer", "offer_accepted", "call_waiting", "call_connected"}


def _events(caplog, level):
    return [
        (getattr(r, "cube_fields", {}).get("event") or r.msg)
        for r in caplog.records
        if r.levelno == level and r.name.startswith("asterisk_cube")
    ]


async def _one_call(d, ids, lines):
    await start_work(d, ids["ann"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    d.caller_left("ch1")
    await settle()


async def test_a_call_logs_nothing_at_info_and_everything_at_debug(world, caplog):  # noqa: F811
    _, ids, lines = world
    d = make(world, FakeTelephony())
    caplog.set_level(logging.DEBUG, logger="asterisk_cube")
    await _one_call(d, ids, lines)
    info, debug = _events(caplog, logging.INFO), _events(caplog, logging.DEBUG)
    # the agent's own actions stay INFO (``agent_state`` lines carry the event name)
    assert "login" in info and "ready" in info
    assert not CALL_EVENTS & set(info), info
    assert not {"accept", "call_ended", "offer"} & set(info), info  # agent_state by a call
    assert set(debug) >= CALL_EVENTS, debug
    assert {"accept", "call_ended"} <= set(debug), debug


async def test_stasis_start_and_end_are_debug_lines(running, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG, logger="asterisk_cube")
    client = FakeClient()
    running(make_supervisor(FakeConnector(client), DefaultStasisHandler()))
    client.emit(stasis_start("c1", "inbound", "3"))
    client.emit(channel_event("StasisEnd", "c1"))
    await polling.until(lambda: "stasis_end" in _events(caplog, logging.DEBUG), timeout=5.0)
    assert "stasis_start" in _events(caplog, logging.DEBUG)
    assert not {"stasis_start", "stasis_end"} & set(_events(caplog, logging.INFO))
