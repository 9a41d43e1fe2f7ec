"""Every ending path hangs up every leg of the call (issue #11 item 1), and a missed-call
callback is a call on the desk (item 5): the distributor with a fake telephony that records
what it is asked to release. The same paths on the real sandbox Asterisk:
tests/integration/test_call_legs_end.py."""

from __future__ import annotations

import asyncio

import pytest
from dbkit import db
from support.fakes import FakeTelephony
from test_distributor import StepClock, make, settle, start_work
from test_distributor import world as distributor_world

from asterisk_cube.db import models as m
from asterisk_cube.services import provisioning as p


@pytest.fixture
def world(tmp_path):
    return distributor_world.__wrapped__(tmp_path)


class LegTelephony(FakeTelephony):
    """Records releases; a callback answers both legs unless told otherwise."""

    def __init__(self, d=None):
        super().__init__()
        self.released: list[tuple[int, list[str]]] = []
        self.d = d
        self.callback_gate: asyncio.Future | None = None

    async def release(self, call_id, channels):
        self.released.append((call_id, list(channels)))
        self.hung_up.extend(channels)

    async def callback(self, call_id, endpoint, number, caller_id):
        self.caller_id = caller_id
        for leg in ("cb-agent", "cb-customer"):
            if not self.d.leg_originated(call_id, f"{leg}-{call_id}"):
                return None
        if self.callback_gate is not None:
            return await self.callback_gate
        return f"cb-agent-{call_id}", f"cb-customer-{call_id}"


async def connected_call(world, tel):
    _, ids, lines = world
    d = make(world, tel)
    tel.d = d
    await start_work(d, ids["ann"], [lines["100"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    return d, ids["ann"], call_id


async def test_desk_hangup_releases_the_agents_leg_too(world):
    tel = LegTelephony()
    d, ann, call_id = await connected_call(world, tel)
    await d.hangup(ann, call_id)
    await settle()
    # Was: only "ch1" (the caller) was hung up; the agent's phone stayed in the call.
    assert tel.released == [(call_id, ["ch1", f"agent-{call_id}"])]
    assert (await d.view(ann)).call.state == "ended"


async def test_the_agents_phone_leaving_releases_the_caller(world):
    tel = LegTelephony()
    d, _ann, call_id = await connected_call(world, tel)
    d.channel_left(f"agent-{call_id}")  # the agent's phone hung up
    await settle()
    assert tel.released == [(call_id, ["ch1"])]
    with db(d) as s:
        assert s.get(m.Call, call_id).end_reason == "agent_hangup"


async def test_the_caller_leaving_releases_the_agents_phone(world):
    tel = LegTelephony()
    d, _ann, call_id = await connected_call(world, tel)
    d.channel_left("ch1")  # the caller hung up
    await settle()
    assert tel.released == [(call_id, [f"agent-{call_id}"])]


async def power_call_taken(world, tel, campaign, state):
    """ann working; a power call of ``campaign`` (its row in ``state``) whose contact
    ``ch-contact`` answered, the dialer having taken ann for it (phase "connecting")."""
    _sessions, ids, lines = world
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"]])
    with db(d) as s:
        camp = p.add_campaign(s, campaign, mode="power", wrap_up=0)
        row = m.Call(
            id=d.ids.next(m.Call),
            direction=m.Direction.OUTBOUND,
            kind=m.CallKind.POWER,
            state=state,
            campaign_id=camp.id,
            started_at=d.now(),
        )
        s.add(row)
        call_id = row.id
    d.outbound_started(
        call_id=call_id,
        agent_id=ids["ann"],
        campaign_id=camp.id,
        contact_id=None,
        number="+4791000005",
        channel_id="ch-contact",
        mode="power",
        connected=False,
    )
    return d, ids["ann"], call_id


async def test_desk_hangup_of_a_dialer_call_releases_contact_and_agent(world):
    tel = LegTelephony()
    d, ann, call_id = await power_call_taken(world, tel, "Out5", m.CallState.CONNECTED)
    d.outbound_connected(call_id, "ch-contact", "ch-agent")
    d.channel_left("ch-agent")  # the dialer watches its own legs: not ended from here
    assert (await d.view(ann)).call.state == "connected"
    await d.hangup(ann, call_id)
    await settle()
    assert tel.released == [(call_id, ["ch-contact", "ch-agent"])]


async def test_desk_hangup_while_the_dialer_connects_ends_every_leg_it_told_of(world):
    """The agent's phone says "In call" as soon as it answers; the dialer then bridges and
    writes the call before it reports it connected. A click on the desk's Hang up in that
    gap was refused ("not connected yet") and the call went on: seen on a loaded CI run,
    the browser phone's power call left in Asterisk. Every leg the dialer reported is hung
    up (its flow sees them go and ends the call)."""
    tel = LegTelephony()
    d, ann, call_id = await power_call_taken(world, tel, "Out6", m.CallState.DIALING)
    assert d.leg_originated(call_id, "ch-agent")  # the dialer rings the agent's phone
    assert (await d.view(ann)).call.state == "connecting"
    await d.hangup(ann, call_id)
    await settle()
    assert tel.released == [(call_id, ["ch-contact", "ch-agent"])]
    assert not d.leg_originated(call_id, "ch-late")  # nothing more is rung for it


async def test_missed_call_callback_is_a_call_on_the_card(world):
    _, ids, lines = world
    clock = StepClock()
    tel = LegTelephony()
    d = make(world, tel, clock)
    tel.d = d
    ann = ids["ann"]
    await start_work(d, ann, [lines["100"]])
    await d.pause(ann, "lunch")
    d.call_arrived("ch1", lines["100"], "91000001")
    d.caller_left("ch1")
    missed_id = next(iter(d.missed))
    tel.callback_gate = asyncio.get_running_loop().create_future()
    await d.callback_missed(ann, missed_id)
    view = await d.view(ann)
    assert view.state == "busy" and view.blocked
    assert view.call.state == "connecting" and view.call.kind == "missed_callback"
    call_id = view.call.call_id
    assert view.call.caller == "91000001" and view.call.did == "100"
    clock.tick(5)
    tel.callback_gate.set_result((f"cb-agent-{call_id}", f"cb-customer-{call_id}"))
    await settle()
    assert tel.caller_id == "100"  # the line's number is what the customer sees
    view = await d.view(ann)
    assert view.call.state == "connected" and view.call.answered_at == clock.t
    await d.journal.drain()
    with db(d) as s:
        row = s.get(m.Call, call_id)
        assert row.state == m.CallState.CONNECTED and row.answered_at is not None
    clock.tick(60)
    d.channel_left(f"cb-customer-{call_id}")  # the customer hangs up
    await settle()
    assert tel.released[-1] == (call_id, [f"cb-agent-{call_id}"])
    view = await d.view(ann)
    assert (view.state, view.pause_reason, view.call.state) == ("paused", "lunch", "ended")
    await d.close_call(ann, call_id)
    with db(d) as s:
        row = s.get(m.Call, call_id)
        assert row.state == m.CallState.ENDED and row.end_reason == "caller_hangup"
        assert (row.ended_at - row.answered_at).total_seconds() == 60
        assert sorted(leg.role.value for leg in row.legs) == ["agent", "contact"]


async def test_a_callback_nobody_answers_fails_and_frees_the_agent(world):
    _, ids, lines = world
    tel = LegTelephony()
    d = make(world, tel)
    tel.d = d
    ann = ids["ann"]
    await start_work(d, ann, [lines["100"]])
    d.call_arrived("ch1", lines["100"], "91000001")
    await d.decline(ann, next(iter(d.calls)))
    d.caller_left("ch1")
    missed_id = next(iter(d.missed))
    tel.callback_gate = asyncio.get_running_loop().create_future()
    await d.callback_missed(ann, missed_id)
    await settle()  # both legs ringing
    call_id = (await d.view(ann)).call.call_id
    await d.hangup(ann, call_id)  # the desk gives up while it rings
    await settle()
    assert tel.released[-1] == (call_id, [f"cb-agent-{call_id}", f"cb-customer-{call_id}"])
    tel.callback_gate.set_result(None)  # the adapter reports: not connected
    await settle()
    view = await d.view(ann)
    assert (view.state, view.call, view.blocked) == ("ready", None, False)
    with db(d) as s:
        assert s.get(m.Call, call_id).state == m.CallState.FAILED


def test_callback_caller_id_is_the_line_or_the_configured_number():
    from asterisk_cube.ari.inbound import InboundApp
    from asterisk_cube.config import Settings

    settings = Settings()
    app = InboundApp(settings, supervisor=None, distributor=None)
    assert app.callback_caller_id("4721000001") == '"4721000001" <4721000001>'
    settings.dialplan.callback_caller_id = "4721000099"
    assert app.callback_caller_id("4721000001") == '"4721000099" <4721000099>'


async def test_channel_left_answers_what_it_ended(world):
    """The lifecycle owner answers "channel X left -> which channels and bridges to end"
    (issue #13): the adapter translates, the distributor decides."""
    from asterisk_cube.acd.lifecycle import Release

    tel = LegTelephony()
    d, _ann, call_id = await connected_call(world, tel)
    assert d.channel_left("ch1") == [Release(call_id, (f"agent-{call_id}",))]
    assert d.channel_left(f"agent-{call_id}") == []  # the last leg: nothing more to end
    assert d.channel_left("not-ours") == []
    await settle()
    assert tel.released == [(call_id, [f"agent-{call_id}"])]  # carried out once
