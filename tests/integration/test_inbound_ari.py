"""The inbound Stasis app on the real sandbox Asterisk, driven in-process through the
distributor's desk API (the web desktop's API is tested end to end elsewhere)."""

import asyncio

import httpx
import pytest
from sippkit import caller, off_the_loop, phone
from sqlalchemy import select
from support.polling import until

from asterisk_cube import dialplan as dp
from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import build_runtime

pytestmark = pytest.mark.integration


@pytest.fixture
async def cube(sandbox, tmp_path):
    env = {**sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        p.add_line(s, "4721000001", "Support", priority=5)
        p.add_line(s, "4721000002", "VIP", priority=9)
        for n in (1, 2):
            p.add_agent(
                s,
                f"agent{n:02d}",
                endpoint=f"PJSIP/agent{n:02d}",
                lines=["4721000001", "4721000002"],
            )
        ids = {a.username: a.id for a in s.scalars(select(m.Agent))}
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    await asyncio.to_thread(dp.install, text, settings)  # it runs its own AMI loop
    running = []

    async def start():
        runtime = build_runtime(settings, install_signal_handlers=False)
        task = asyncio.create_task(runtime.run())
        await until(lambda: _ready(runtime), what="ARI connected")
        running.append((runtime, task))
        return runtime.state.extras["distributor"]

    async def stop():
        runtime, task = running.pop()
        runtime.request_stop("test")
        assert await asyncio.wait_for(task, 15) == 0

    desk = await start()
    yield desk, sessions, ids, lines, start, stop
    while running:
        await stop()


async def _ready(runtime):
    sup = runtime.state.supervisor
    return sup is not None and sup.connected and "distributor" in runtime.state.extras


async def test_call_waits_is_offered_accepted_and_bridged(cube, sandbox, tmp_path):
    desk, sessions, ids, lines, *_ = cube
    a1 = ids["agent01"]
    await desk.login(a1)
    await desk.choose_lines(a1, [lines["4721000001"]])
    await desk.ready(a1)
    async with off_the_loop(
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=300)
    ) as (agent_phone,):
        call = caller(
            sandbox, "4721000001", tmp_path / "caller", caller_id="91234567", hold_ms=4000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        assert view.offer.caller == "91234567" and view.offer.did == "4721000001"
        await desk.accept(a1, view.offer.call_id)
        await until(lambda: _connected(desk, a1), what="connected")
        result = await asyncio.to_thread(call.wait, 30)
        assert result.ok, result.summary()
        view = await until(lambda: _card_ended(desk, a1), what="call ended")
    assert agent_phone.stop().successful == 1
    with transaction(sessions) as s:
        row = s.get(m.Call, view.call.call_id)
        assert row.state == m.CallState.ENDED
        assert row.answered_at is not None and row.agent_id == a1
        roles = sorted(leg.role.value for leg in row.legs)
        assert roles == ["agent", "caller"]


async def test_caller_hanging_up_in_queue_becomes_missed(cube, sandbox, tmp_path):
    _desk, sessions, _ids, lines, *_ = cube
    call = caller(sandbox, "4721000002", tmp_path / "caller", caller_id="91230000", hold_ms=1500)
    result = await asyncio.to_thread(call.run, 30)
    assert result.ok, result.summary()
    await until(lambda: _missed_count(sessions), what="missed call")
    with transaction(sessions) as s:
        missed = s.scalar(select(m.MissedCall))
        assert missed.caller_number == "91230000" and missed.line_id == lines["4721000002"]


async def _offer(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.offer else None


async def _connected(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.call and view.call.state == "connected" else None


async def _card_ended(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.call and view.call.state == "ended" else None


async def _missed_count(sessions):
    with transaction(sessions) as s:
        return s.scalar(select(m.MissedCall)) is not None


async def test_restart_with_calls_waiting_loses_none_and_keeps_order(cube, sandbox, tmp_path):
    desk, sessions, ids, lines, start, stop = cube
    a1 = ids["agent01"]
    # A holding bridge left behind by an earlier serve must be reused (ARI answers 409).
    bridge = f"{sandbox.ari_url}/ari/bridges/cube-hold-{lines['4721000001']}"
    async with httpx.AsyncClient(auth=("asterisk-cube", "asterisk-cube")) as ari:
        await ari.post(bridge, params={"type": "holding"})
        assert (await ari.get(bridge)).status_code == 200
    callers = []
    for i in range(3):
        callers.append(
            caller(
                sandbox,
                "4721000001",
                tmp_path / f"c{i}",
                caller_id=f"9100000{i}",
                hold_ms=25000,
                slot=i,
            ).start()
        )
        await until(lambda n=i + 1: _waiting(desk, n), what=f"{i + 1} calls waiting")
    await stop()  # serve goes away while three callers wait
    desk = await start()
    # ARI connected is not recovered yet: the resync runs after it (ari/supervisor.py),
    # and under load it came after this test looked (the desk had no calls)
    await until(lambda: _known(desk, 3), what="the three waiting callers recovered")
    assert [desk.calls[cid].caller for cid in sorted(desk.calls)] == [
        "91000000",
        "91000001",
        "91000002",
    ]
    await desk.login(a1)
    await desk.choose_lines(a1, [lines["4721000001"]])
    await desk.ready(a1)
    order = []
    async with off_the_loop(
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100)
    ):
        for _ in range(3):
            view = await until(lambda: _offer(desk, a1), what="offer")
            order.append(view.offer.caller)
            await desk.accept(a1, view.offer.call_id)
            view = await until(lambda: _connected(desk, a1), what="connected")
            await desk.hangup(a1, view.call.call_id)
            await until(lambda: _card_ended(desk, a1), what="ended")
            await desk.close_call(a1, view.call.call_id)
        await until(lambda: _state(desk, a1, "ready"), what="ready after the last call")
    assert order == ["91000000", "91000001", "91000002"]
    for c in callers:
        assert (await asyncio.to_thread(c.wait, 30)).ok
    with transaction(sessions) as s:
        states = [r.state for r in s.scalars(select(m.Call).order_by(m.Call.id))]
    assert states == [m.CallState.ENDED] * 3


async def _known(desk, n):
    return len(desk.calls) >= n


async def _waiting(desk, n):
    return len(desk.waiting_channels()) == n


async def _state(desk, agent_id, state):
    return (await desk.view(agent_id)).state == state


async def _answering_setup(desk, sessions, forward1, forward2):
    with transaction(sessions) as s:
        p.add_client(
            s,
            "Fjord AS",
            handling="forward",
            forward1=forward1,
            forward2=forward2,
            hours="mon-sun 00:00-24:00",
        )  # open: the entry route checks hours
        s.scalar(select(m.Client)).forward_timeout_seconds = 4
        p.add_line(s, "4721000003", "Fjord", client="Fjord AS")
        p.grant_lines(s, "agent01", ["4721000003"])
        line_id = s.scalar(select(m.Line.id).where(m.Line.did == "4721000003"))
    desk.load()  # pick up the new line permission
    return line_id


async def _forward_status(desk, agent_id, status):
    view = await desk.view(agent_id)
    fwd = view.call.forward if view.call else None
    return view if fwd and fwd.status == status else None


async def _install(sessions, sandbox, tmp_path):
    settings = load_settings(env={**sandbox.env(), "ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    with transaction(sessions) as s:
        text = dp.render(s, settings)
    await asyncio.to_thread(dp.install, text, settings)


async def test_forward_falls_back_to_second_target_and_hands_over(cube, sandbox, tmp_path):
    desk, sessions, ids, _lines, *_ = cube
    a1 = ids["agent01"]
    line_id = await _answering_setup(desk, sessions, "PJSIP/agent05", "PJSIP/agent06")
    await _install(sessions, sandbox, tmp_path)
    await desk.login(a1)
    await desk.choose_lines(a1, [line_id])
    await desk.ready(a1)
    async with off_the_loop(
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100),
        phone(sandbox, sandbox.agent_port(6), tmp_path / "target2", answer_ms=300),
    ) as (_, target2):
        call = caller(
            sandbox, "4721000003", tmp_path / "caller", caller_id="91234567", hold_ms=14000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        await until(lambda: _connected(desk, a1), what="connected")
        await desk.forward(a1, view.offer.call_id, None)  # the client's standard handling
        view = await until(
            lambda: _forward_status(desk, a1, "announcing"),
            timeout=15,
            what="second target announcing",
        )
        assert (view.call.forward.target, view.call.forward.attempt) == ("PJSIP/agent06", 2)
        await desk.forward_connect(a1, view.call.call_id)
        assert (await desk.view(a1)).state == "ready"  # handed over: free for the next call
        result = await asyncio.to_thread(call.wait, 30)
        assert result.ok, result.summary()
    assert target2.stop().successful == 1
    with transaction(sessions) as s:
        row = s.get(m.Call, view.call.call_id)
        assert row.state == m.CallState.ENDED and row.end_reason == "forwarded to PJSIP/agent06"


async def test_forward_with_no_target_answering_returns_to_the_caller(cube, sandbox, tmp_path):
    desk, sessions, ids, _lines, *_ = cube
    a1 = ids["agent01"]
    line_id = await _answering_setup(desk, sessions, "PJSIP/agent05", "PJSIP/agent07")
    await _install(sessions, sandbox, tmp_path)
    await desk.login(a1)
    await desk.choose_lines(a1, [line_id])
    await desk.ready(a1)
    async with off_the_loop(
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100)
    ):
        call = caller(
            sandbox, "4721000003", tmp_path / "caller", caller_id="91234567", hold_ms=16000
        ).start()
        view = await until(lambda: _offer(desk, a1), what="offer")
        await desk.accept(a1, view.offer.call_id)
        await until(lambda: _connected(desk, a1), what="connected")
        await desk.forward(a1, view.offer.call_id, None)
        view = await until(
            lambda: _forward_status(desk, a1, "failed"), timeout=20, what="both targets failed"
        )
        assert view.call.state == "connected"  # the agent is back with the caller
        await desk.hangup(a1, view.call.call_id)
        result = await asyncio.to_thread(call.wait, 10)  # hung up by us, not by its timer
        assert result.ok, result.summary()


async def test_missed_call_is_called_back_agent_first(cube, sandbox, tmp_path):
    desk, sessions, ids, lines, *_ = cube
    a1 = ids["agent01"]
    gives_up = caller(
        sandbox, "4721000001", tmp_path / "caller", caller_id="91230000", hold_ms=1500
    )
    assert (await asyncio.to_thread(gives_up.run, 30)).ok
    await until(lambda: _missed_count(sessions), what="missed call")
    await desk.login(a1)
    await desk.choose_lines(a1, [lines["4721000001"]])
    view = await desk.view(a1)
    missed_id = view.missed[0].missed_id
    async with off_the_loop(
        phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100),
        phone(
            sandbox, sandbox.customer_ports[0], tmp_path / "customer", answer_ms=500, talk_ms=3000
        ),
    ) as (agent_phone, customer_phone):
        await desk.callback_missed(a1, missed_id)
        view = await desk.view(a1)
        assert view.state == "busy" and view.blocked  # on an outbound call: inbound blocked
        await until(
            lambda: _state(desk, a1, "paused"),
            timeout=20,
            what="back from the callback when the customer hangs up",
        )
    assert agent_phone.stop().successful == 1
    assert customer_phone.stop().successful == 1
    await desk.mark_missed_processed(a1, missed_id)
    assert (await desk.view(a1)).missed == []
    with transaction(sessions) as s:
        row = s.scalar(select(m.Call).where(m.Call.kind == m.CallKind.MANUAL))
        assert row.state == m.CallState.ENDED and row.dialed_number == "91230000"
        assert s.get(m.MissedCall, missed_id).callback_call_id == row.id
