"""What the dialer hands its pacer: who can take a call, the campaign's pacing config and
connect window, and what a (restarted) dialer learns from the calls already made."""

import datetime as dt

import pytest
from sqlalchemy import select
from support.dialer import (
    FakeTelephony,
    dialer_world,
    make,
    ready,
    run_until,
    settled,
)

from asterisk_cube.acd.distributor import DialerAgent, Distributor
from asterisk_cube.core import pacing as pc
from asterisk_cube.core.agents import AgentState
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.dialer.pacer import (
    HistoryCall,
    history_observations,
    pacing_config,
    pacing_state,
)
from asterisk_cube.dialer.service import Dialer
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

#: The loop tests run on looptime's fast-forwarding event loop: sleeps, timeouts and the
#: dialer's budgets (0.1-0.3 s here) are measured on the loop's fake clock, which moves only
#: when every task waits, so a busy machine cannot make them run out (issue #11 item 11).
pytestmark = pytest.mark.looptime


@pytest.fixture
def world(tmp_path):
    return dialer_world(tmp_path)


def agent(agent_id, state, **kw):
    base = dict(
        since=NOW - dt.timedelta(seconds=30),
        idle_since=None,
        wrap_up_until=None,
        pause_requested=None,
        endpoint="PJSIP/x",
        on_outbound_call=False,
        dialer_dialing=False,
    )
    return DialerAgent(agent_id, state, **{**base, **kw})


NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def test_pacing_state_counts_who_can_take_a_call():
    agents = [
        agent(1, AgentState.READY),
        agent(2, AgentState.READY, endpoint=None),  # no phone: cannot be connected
        agent(3, AgentState.BUSY),
        agent(4, AgentState.BUSY, pause_requested="lunch"),  # pausing after this call
        agent(5, AgentState.WRAP_UP, wrap_up_until=NOW + dt.timedelta(seconds=4)),
        agent(
            6, AgentState.WRAP_UP, wrap_up_until=NOW + dt.timedelta(seconds=4), pause_requested="x"
        ),
        agent(7, AgentState.PAUSED),
        agent(8, AgentState.OFFERED),  # an inbound offer: about to be busy
    ]
    est = pc.default_estimates(15.0)
    state = pacing_state(
        agents,
        NOW,
        estimates=est,
        config=pc.PacingConfig(),
        ringing=(1.0, 2.0),
        waiting=1,
        abandon=pc.AbandonStats(1, 50),
    )
    assert state.ready_agents == 1
    assert state.talking == (30.0, 30.0)
    assert state.wrapping == (4.0,)
    assert state.paused_agents == 3
    assert (state.dialing, state.waiting_calls, state.abandon.rate) == ((1.0, 2.0), 1, 0.02)


def test_pacing_config_from_the_campaign(world):
    sessions, _ = world
    with transaction(sessions) as s:
        p.add_campaign(s, "P", mode="power", abandon_cap="2%")
        p.add_campaign(s, "Q", mode="predictive")
        power, predictive = (load_campaign(s, c.id) for c in s.scalars(select(m.Campaign)))
    assert pacing_config(power).mode == pc.PacingMode.POWER
    assert pacing_config(power).abandon_cap == 0.02
    assert pacing_config(predictive).mode == pc.PacingMode.PREDICTIVE
    assert pacing_config(predictive).max_ratio == pc.DEFAULT_MAX_DIAL_RATIO == 10.0


async def test_the_pacer_plans_with_the_window_the_dialer_connects_in(world):
    """One number: an answered call waits for an agent to free up exactly as long as the
    pacer assumes (abandon budget less the agent's answer time less the bridge margin)."""
    dialer, _distributor, _tel, cid = make(world, "predictive", ["+4790000001"])
    dialer._reload()
    window = 0.3 - 0.05 - 0.01
    assert dialer.connect_window == pytest.approx(window)
    assert dialer.runs[cid].learning.grace_seconds == pytest.approx(window)
    assert dialer.runs[cid].learning.estimates().grace_seconds == pytest.approx(window)
    assert pytest.approx(1.4) == pc.CONNECT_WINDOW  # 2 s - 0.5 s - 0.1 s, the defaults


# ------------------------------------------------------------ learning from history


async def test_a_restarted_dialer_learns_from_the_calls_already_made(world):
    """Ring and talk times learned in one run are there again after a restart (loaded
    from the campaign's calls in the database), not the generic prior."""
    sessions, agents = world
    phones = [f"+47900000{i:02d}" for i in range(12)]
    dialer, distributor, tel, cid = make(world, "power", phones, max_attempts=1)
    for i, phone in enumerate(phones):
        tel.contacts[phone] = (
            ("answer", 0.02, 0.05) if i % 3 == 0 else ("never",) if i % 3 == 1 else ("busy",)
        )
    await ready(distributor, agents[:2])
    await run_until(dialer, lambda: settled(sessions, cid, dialer))
    live = dialer.runs[cid].learning
    assert (live.dials.dials, sum(live.dials.person), live.talk.calls) == (12, 4, 4)
    (row,) = dialer.snapshot()
    assert (row["agents"], row["dials_per_minute"], row["answer_rate"]) == (2, 12.0, 0.333)

    def restart(**options):
        again = Dialer(
            sessions, Distributor(sessions, EventHub()), None, FakeTelephony(), **options
        )
        again._reload()
        return again.runs[cid].learning

    learned = restart()
    assert learned.dials == live.dials  # the same counts in the same ring-time bins
    assert learned.talk == live.talk
    est, prior = learned.estimates(), pc.default_estimates()
    assert est.answer_cdf != prior.answer_cdf and est.talk_sf != prior.talk_sf
    # history_days=0: no history, the prior
    assert restart(history_days=0).dials.dials == 0
    # only the window's days count
    with transaction(sessions) as s:
        for call in s.scalars(select(m.Call)):
            call.started_at -= dt.timedelta(days=3)
    assert restart(history_days=2).dials.dials == 0
    assert restart(history_days=4).dials.dials == 12


def test_history_rows_as_the_live_dialer_saw_them():
    t0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

    def at(seconds):
        return t0 + dt.timedelta(seconds=seconds)

    S = m.CallState
    calls = [
        HistoryCall(t0, at(3.5), at(4), at(64), S.ENDED, "contact_hangup"),  # talked 60 s
        HistoryCall(t0, at(2), None, at(6), S.ABANDONED, "abandoned_no_agent"),
        HistoryCall(t0, None, None, at(25), S.NO_ANSWER, "no_answer"),
        HistoryCall(t0, None, None, at(0.2), S.FAILED, "busy"),
        HistoryCall(t0, None, None, at(7), S.MACHINE, "machine"),  # AMD: not a person
        HistoryCall(t0, at(5), None, at(9), S.ENDED, "lost_during_restart"),
        HistoryCall(t0, None, None, at(8), S.NO_ANSWER, "agent_hangup_ringing"),
        HistoryCall(t0, None, None, at(1), S.FAILED, "error"),
    ]
    dials, talks = history_observations(calls)
    assert dials == [(3.5, True), (2.0, True), (25.0, False), (0.2, False), (7.0, False)]
    assert talks == [60.0]


def test_learning_history_reads_the_campaigns_finished_calls(world):
    sessions, agents = world
    t0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    with transaction(sessions) as s:
        camp = p.add_campaign(s, "H", mode="power")
        other = p.add_campaign(s, "Other", mode="power")
        for n, (campaign_id, minute) in enumerate([(camp.id, 1), (other.id, 2), (camp.id, 3)]):
            contact = m.Contact(campaign_id=campaign_id, phone=f"+4790000{n:03d}")
            s.add(contact)
            s.flush()
            started = t0 + dt.timedelta(minutes=minute)
            claim = records.Claim(contact.id, campaign_id, contact.phone, None, None, 1)
            call_id = records.open_call(s, claim, "power", "n1", started)
            records.contact_dialed(s, call_id, f"ch{n}", "PJSIP/x", started)
            records.contact_answered(s, call_id, started + dt.timedelta(seconds=4))
            records.call_connected(s, call_id, agents[0], started + dt.timedelta(seconds=4.1))
            records.call_finished(
                s, call_id, m.CallState.ENDED, "agent_hangup", started + dt.timedelta(seconds=34)
            )
        # one still going on: not learned from yet
        contact = m.Contact(campaign_id=camp.id, phone="+4790000999")
        s.add(contact)
        s.flush()
        claim = records.Claim(contact.id, camp.id, contact.phone, None, None, 1)
        open_id = records.open_call(s, claim, "power", "n1", t0 + dt.timedelta(minutes=4))
        records.contact_dialed(s, open_id, "ch9", "PJSIP/x", t0 + dt.timedelta(minutes=4))
        cid = camp.id
    with transaction(sessions) as s:
        rows = records.learning_history(s, cid, t0)
        assert [r.dialed_at for r in rows] == [
            t0 + dt.timedelta(minutes=1),
            t0 + dt.timedelta(minutes=3),
        ]  # oldest first, this campaign's, finished
        assert history_observations(rows) == ([(4.0, True), (4.0, True)], [29.9, 29.9])
        (last,) = records.learning_history(s, cid, t0, limit=1)  # the newest
        assert last.dialed_at == t0 + dt.timedelta(minutes=3)
        assert records.learning_history(s, cid, t0 + dt.timedelta(minutes=2))[0] == last
