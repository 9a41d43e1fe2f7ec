"""The live dialer paces each ringing line on its contact's answer odds (issue 18): the
claim reads how the contact's last attempt ended and its list (in the claim's own
transaction, off the event loop for pool claims), the line's stratum comes from it,
``Learning`` learns the odds from each dial's end and ``CampaignRun.ringing_odds`` lines
them up with ``ringing_ages`` for the pacer."""

from __future__ import annotations

import datetime as dt

from test_dialer_claims import NOW, add_callback, add_contact, claim, db  # noqa: F401

from asterisk_cube.core import pacing as pc
from asterisk_cube.core.answer_odds import stratum
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.dialer.claims import Claim
from asterisk_cube.dialer.pacer import Learning, pacing_state
from asterisk_cube.dialer.state import CampaignRun, Line


def _attempt(s, campaign_id, contact_id, result, minutes_ago):
    started = NOW - dt.timedelta(minutes=minutes_ago)
    s.add(
        m.ContactAttempt(
            contact_id=contact_id,
            campaign_id=campaign_id,
            started_at=started,
            ended_at=started + dt.timedelta(seconds=30),
            result=result,
        )
    )


def test_a_claim_knows_how_the_contacts_last_attempt_ended(db):  # noqa: F811
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        fresh = add_contact(s, cid, 1)
        rang_out = add_contact(s, cid, 2, attempts=2, status=m.ContactStatus.NOT_ANSWERED)
        _attempt(s, cid, rang_out, m.CallState.MACHINE, 120)
        _attempt(s, cid, rang_out, m.CallState.NO_ANSWER, 60)  # the latest
        asked = add_contact(s, cid, 3, attempts=1)
        _attempt(s, cid, asked, m.CallState.ENDED, 90)
        add_callback(s, cid, asked, NOW - dt.timedelta(minutes=1))
    got = {c.contact_id: c for c in claim(sessions, cid)}
    assert (got[fresh].last_result, got[fresh].attempt) == (None, 1)
    assert (got[rang_out].last_result, got[rang_out].attempt) == ("no_answer", 3)
    assert got[asked].last_result == "callback"
    with transaction(sessions) as s:
        campaign = load_campaign(s, cid)
    run = CampaignRun(campaign, Learning(pc.Prior(), 15.0))
    keys = {c.contact_id: Line(c.contact_id, run, c, "predictive").odds_key for c in got.values()}
    assert keys[fresh] == stratum(1)
    assert keys[rang_out] == stratum(3, "no_answer")
    assert keys[asked][0] == "callback"


def test_ringing_lines_carry_their_learned_odds_to_the_pacer(db):  # noqa: F811
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        campaign = load_campaign(s, cid)
    learning = Learning(pc.Prior(), 15.0)
    callback, retry = stratum(2, "callback"), stratum(3, "no_answer")
    for i in range(600):  # callbacks answer 3 in 5, retries of no-answers 1 in 20
        learning.observe_dial(10.0, i % 5 < 3, callback)
        learning.observe_dial(20.0, i % 20 == 0, retry)
    run = CampaignRun(campaign, learning, monotonic=lambda: 100.0)
    kinds = {1: callback, 2: retry, 3: retry}
    for n, key in kinds.items():
        c = Claim(n, cid, f"+47{n}", None, None, int(key[1]), last_result=key[0])  # type: ignore[arg-type]
        line = Line(n, run, c, "predictive", phase="ringing", dialed_at=100.0 - n)
        run.lines[n] = line
    learning.estimates(now=100.0)
    ages, odds = run.ringing_ages, run.ringing_odds
    assert ages == (1.0, 2.0, 3.0)
    assert odds[0] > 1.5 and odds[1] == odds[2] < 0.3
    state = pacing_state(
        [],
        NOW,
        estimates=learning.estimates(now=100.0),
        config=pc.PacingConfig(),
        ringing=ages,
        ringing_odds=odds,
    )
    assert state.dialing_odds == odds
    learning.per_contact_odds = False
    assert run.ringing_odds == ()
