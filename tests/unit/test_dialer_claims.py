"""Claiming contacts in SQL (dialer/claims.py) and recording outcomes (dialer/records.py),
on SQLite; the same statements run on PostgreSQL in tests/integration/test_dialer_claims_pg.py."""

import datetime as dt
import random
import threading

import pytest
from sqlalchemy import delete, select

from asterisk_cube.core import contacts as core
from asterisk_cube.core.contacts import Outcome, PickKind
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import load_campaign, outbound_campaigns
from asterisk_cube.dialer.claims import (
    any_callback_due,
    claim_contacts,
    contact_state,
    release_claim,
)
from asterisk_cube.services import provisioning as p

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # a Monday, 11:00 in Oslo


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        c = p.add_campaign(
            s,
            "Sales",
            mode="power",
            skill="sales",
            max_attempts=3,
            retry_interval=30,
            callback_reservation=10,
            windows="mon-fri 09:00-20:00",
            timezone="Europe/Oslo",
        )
        p.set_campaign_status(s, "Sales", "running")
        for name in ("ann", "bob"):
            p.add_agent(s, name, endpoint=f"PJSIP/{name}", skills=["sales"])
        agents = {a.username: a.id for a in s.scalars(select(m.Agent))}
        campaign_id = c.id
    return url, sessions, campaign_id, agents


def add_contact(s, campaign_id, n, **values):
    row = m.Contact(campaign_id=campaign_id, phone=f"+479{n:07d}", name=f"c{n}", **values)
    s.add(row)
    s.flush()
    return row.id


def add_callback(s, campaign_id, contact_id, due, agent_id=None, comment="call me"):
    s.get(m.Contact, contact_id).status = m.ContactStatus.CALLBACK
    s.add(
        m.ScheduledCallback(
            contact_id=contact_id,
            campaign_id=campaign_id,
            agent_id=agent_id,
            due_at=due,
            comment=comment,
        )
    )


def claim(sessions, campaign_id, now=NOW, limit=10, **kw):
    with transaction(sessions) as s:
        campaign = load_campaign(s, campaign_id)
        return claim_contacts(s, campaign, now, limit, node="n1", **kw)


def test_order_callbacks_then_fresh_then_longest_overdue_retries(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        fresh2 = add_contact(s, cid, 2)
        fresh1 = add_contact(s, cid, 1)
        late = add_contact(
            s,
            cid,
            3,
            status=m.ContactStatus.NOT_ANSWERED,
            attempts=1,
            next_attempt_at=NOW - dt.timedelta(minutes=5),
        )
        later = add_contact(
            s,
            cid,
            4,
            status=m.ContactStatus.NOT_ANSWERED,
            attempts=2,
            next_attempt_at=NOW - dt.timedelta(minutes=50),
        )
        cb_new = add_contact(s, cid, 5)
        add_callback(s, cid, cb_new, NOW - dt.timedelta(minutes=1))
        cb_old = add_contact(s, cid, 6)
        add_callback(s, cid, cb_old, NOW - dt.timedelta(minutes=9))
    picks = claim(sessions, cid)
    assert [c.contact_id for c in picks] == [cb_old, cb_new, fresh2, fresh1, later, late]
    assert [c.kind for c in picks] == [PickKind.CALLBACK] * 2 + [PickKind.FRESH] * 2 + [
        PickKind.RETRY
    ] * 2
    assert picks[0].comment == "call me" and picks[0].attempt == 1
    assert picks[4].attempt == 3
    with transaction(sessions) as s:
        rows = s.scalars(select(m.Contact)).all()
        assert {r.status for r in rows} == {m.ContactStatus.DIALING}
        assert all(r.claimed_by == "n1" and r.last_attempt_at == NOW for r in rows)
    assert claim(sessions, cid) == []  # never twice


def test_limits_held_by_the_claim(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        add_contact(s, cid, 1, status=m.ContactStatus.NOT_ANSWERED, attempts=3)  # exhausted
        add_contact(  # not yet due
            s,
            cid,
            2,
            status=m.ContactStatus.NOT_ANSWERED,
            attempts=1,
            next_attempt_at=NOW + dt.timedelta(seconds=1),
        )
        add_contact(s, cid, 3, status=m.ContactStatus.DIALING, attempts=1)
        for st in (m.ContactStatus.DONE, m.ContactStatus.EXHAUSTED, m.ContactStatus.INVALID):
            add_contact(s, cid, 10 + len(st.value), status=st)
        future_cb = add_contact(s, cid, 4)
        add_callback(s, cid, future_cb, NOW + dt.timedelta(minutes=1))
        due_ok = add_contact(
            s,
            cid,
            5,
            status=m.ContactStatus.NOT_ANSWERED,
            attempts=2,
            next_attempt_at=NOW,
        )
    assert [c.contact_id for c in claim(sessions, cid)] == [due_ok]
    # a second later the retry is due
    assert len(claim(sessions, cid, now=NOW + dt.timedelta(seconds=1))) == 1


def test_nothing_outside_the_calling_window(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        add_contact(s, cid, 1)
    oslo_evening = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)  # 20:00 in Oslo: closed
    saturday = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
    assert claim(sessions, cid, now=oslo_evening) == []
    assert claim(sessions, cid, now=saturday) == []
    assert len(claim(sessions, cid, now=oslo_evening - dt.timedelta(seconds=1))) == 1


def test_callback_reserved_for_its_agent_then_anyone(db):
    _, sessions, cid, agents = db
    ann, bob = agents["ann"], agents["bob"]
    with transaction(sessions) as s:
        contact = add_contact(s, cid, 1)
        add_callback(s, cid, contact, NOW, agent_id=ann, comment="wants the blue one")
    both = frozenset({ann, bob})
    assert claim(sessions, cid, logged_in=both) == []  # pool dialing: reserved for ann
    assert claim(sessions, cid, logged_in=both, for_agent=bob) == []
    got = claim(sessions, cid, logged_in=both, for_agent=ann)
    assert got[0].reserved_for == ann and got[0].comment == "wants the blue one"
    assert got[0].reserved_until == NOW + dt.timedelta(minutes=10)
    with transaction(sessions) as s:
        assert release_claim(s, contact, NOW)
    # the reservation ran out: anyone
    after = NOW + dt.timedelta(minutes=10)
    got = claim(sessions, cid, now=after, logged_in=both, for_agent=bob)
    assert got[0].contact_id == contact and got[0].reserved_for is None
    with transaction(sessions) as s:
        assert release_claim(s, contact, NOW)
    # ann logged off: the first free agent
    got = claim(sessions, cid, logged_in=frozenset({bob}), for_agent=bob)
    assert got[0].contact_id == contact and got[0].callback_agent_id == ann


def test_own_reserved_callback_first_and_kinds_filter(db):
    _, sessions, cid, agents = db
    ann, bob = agents["ann"], agents["bob"]
    with transaction(sessions) as s:
        add_contact(s, cid, 1)
        for_all = add_contact(s, cid, 2)
        add_callback(s, cid, for_all, NOW - dt.timedelta(minutes=5))
        mine = add_contact(s, cid, 3)
        add_callback(s, cid, mine, NOW - dt.timedelta(minutes=1), agent_id=ann)
    got = claim(
        sessions, cid, limit=1, for_agent=ann, logged_in={ann, bob}, kinds={PickKind.CALLBACK}
    )
    assert [c.contact_id for c in got] == [mine]
    got = claim(sessions, cid, kinds={PickKind.CALLBACK}, logged_in={ann, bob})
    assert [c.contact_id for c in got] == [for_all]
    assert claim(sessions, cid, kinds={PickKind.CALLBACK}) == []


def test_release_does_not_count_the_attempt(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        contact = add_contact(s, cid, 1, status=m.ContactStatus.NOT_ANSWERED, attempts=1)
    (got,) = claim(sessions, cid)
    assert got.attempt == 2
    with transaction(sessions) as s:
        assert release_claim(s, contact, NOW)
        assert not release_claim(s, contact, NOW)
        row = s.get(m.Contact, contact)
        assert (row.status, row.attempts, row.claimed_by) == (m.ContactStatus.NOT_ANSWERED, 1, None)
    assert claim(sessions, cid)[0].contact_id == contact  # first again


def test_outcomes_retry_exhaust_final_callback(db):
    _, sessions, cid, agents = db
    with transaction(sessions) as s:
        a = add_contact(s, cid, 1)
        b = add_contact(s, cid, 2, attempts=2)
        c = add_contact(s, cid, 3)
    claim(sessions, cid)
    with transaction(sessions) as s:
        rules = load_campaign(s, cid).rules
        records.apply_outcome(s, a, Outcome.NO_ANSWER, rules, NOW)
        records.apply_outcome(s, b, Outcome.BUSY, rules, NOW)
        cb = core.Callback(NOW + dt.timedelta(hours=2), agents["ann"], "after lunch")
        records.apply_outcome(s, c, Outcome.CALLBACK, rules, NOW, cb, created_by=agents["ann"])
        ra, rb, rc = (s.get(m.Contact, i) for i in (a, b, c))
        assert ra.status == m.ContactStatus.NOT_ANSWERED
        assert ra.next_attempt_at == NOW + dt.timedelta(minutes=30)
        assert rb.status == m.ContactStatus.EXHAUSTED
        assert (rc.status, rc.attempts) == (m.ContactStatus.CALLBACK, 0)
        sched = s.scalar(select(m.ScheduledCallback))
        assert (sched.agent_id, sched.comment, sched.status) == (
            agents["ann"],
            "after lunch",
            m.CallbackStatus.PENDING,
        )
        # a new callback replaces the pending one; a final outcome cancels it
        records.apply_outcome(
            s, c, Outcome.CALLBACK, rules, NOW, core.Callback(NOW + dt.timedelta(hours=3))
        )
        statuses = sorted(r.status.value for r in s.scalars(select(m.ScheduledCallback)))
        assert statuses == ["cancelled", "pending"]
        records.apply_outcome(s, c, Outcome.FINAL, rules, NOW)
        assert s.get(m.Contact, c).status == m.ContactStatus.DONE
        assert {r.status for r in s.scalars(select(m.ScheduledCallback))} == {
            m.CallbackStatus.CANCELLED
        }


def test_recover_after_restart(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        for n in range(3):
            add_contact(s, cid, n)
    claims = claim(sessions, cid)
    with transaction(sessions) as s:
        talking = records.open_call(s, claims[0], "power", "n1", NOW)
        records.contact_dialed(s, talking, "ch0", "PJSIP/x@carrier", NOW)
        records.call_connected(s, talking, None, NOW)
        ringing = records.open_call(s, claims[1], "power", "n1", NOW)
        records.contact_dialed(s, ringing, "ch1", "PJSIP/y@carrier", NOW)
        records.open_call(s, claims[2], "preview", "n1", NOW)  # agent rung, contact not yet
    with transaction(sessions) as s:
        rules = load_campaign(s, cid).rules
        stats = records.recover(s, "n1", NOW, lambda _cid: rules)
        assert stats == {"reached": 1, "failed": 1, "released": 1}
        states = [s.get(m.Contact, c.contact_id) for c in claims]
        assert [(r.status.value, r.attempts) for r in states] == [
            ("done", 1),
            ("not_answered", 1),
            ("new", 0),
        ]
        results = [a.result for a in s.scalars(select(m.ContactAttempt))]
        assert results == [m.CallState.ENDED, m.CallState.FAILED]


def test_running_campaigns_loaded_with_rules(db):
    _, sessions, cid, _ = db
    with transaction(sessions) as s:
        p.add_campaign(s, "Idle", mode="preview")
        (cfg,) = outbound_campaigns(s)
        assert cfg.campaign_id == cid and cfg.mode == "power" and cfg.skill == "sales"
        assert cfg.rules.max_attempts == 3
        assert cfg.rules.retry_interval == dt.timedelta(minutes=30)
        assert cfg.rules.reservation == dt.timedelta(minutes=10)
        assert core.in_window(cfg.rules, NOW)
        assert len(outbound_campaigns(s, running_only=False)) == 2


def test_sql_claim_agrees_with_the_core_on_random_lists(db):
    """The SQL statement and core.pick_contacts choose the same contacts in the same order."""
    _, sessions, cid, agents = db
    ann, bob = agents["ann"], agents["bob"]
    rng = random.Random(7)
    statuses = [
        m.ContactStatus.NEW,
        m.ContactStatus.NOT_ANSWERED,
        m.ContactStatus.CALLBACK,
        m.ContactStatus.DIALING,
        m.ContactStatus.DONE,
    ]
    for _round in range(25):
        with transaction(sessions) as s:
            s.execute(delete(m.ScheduledCallback))
            s.execute(delete(m.Contact))
            for n in range(rng.randint(0, 14)):
                st = rng.choice(statuses)
                # as the dialer leaves them: not_answered always after at least one attempt
                low = 1 if st == m.ContactStatus.NOT_ANSWERED else 0
                attempts = rng.randint(low, 4)
                if st == m.ContactStatus.NEW and rng.random() < 0.6:
                    attempts = 0
                nxt = None
                if st == m.ContactStatus.NOT_ANSWERED and rng.random() < 0.9:
                    nxt = NOW + dt.timedelta(minutes=rng.randint(-60, 20))
                cid_ = add_contact(s, cid, n, status=st, attempts=attempts, next_attempt_at=nxt)
                if st == m.ContactStatus.CALLBACK:
                    s.get(m.Contact, cid_).status = m.ContactStatus.NEW
                    add_callback(
                        s,
                        cid,
                        cid_,
                        NOW + dt.timedelta(minutes=rng.randint(-30, 5)),
                        agent_id=rng.choice([None, ann, bob]),
                    )
        logged_in = frozenset(rng.sample([ann, bob], rng.randint(0, 2)))
        for_agent = rng.choice([None, ann, bob])
        limit = rng.randint(1, 8)
        with transaction(sessions) as s:
            campaign = load_campaign(s, cid)
            states = [contact_state(s, r) for r in s.scalars(select(m.Contact))]
        expected = core.pick_contacts(
            states, campaign.rules, NOW, limit, agent_id=for_agent, logged_in=logged_in
        )
        got = claim(sessions, cid, limit=limit, for_agent=for_agent, logged_in=logged_in)
        assert [c.contact_id for c in got] == [pk.contact.contact_id for pk in expected], (
            states,
            for_agent,
            logged_in,
        )
        assert [c.kind for c in got] == [pk.kind for pk in expected]
        assert [c.reserved_for for c in got] == [pk.reserved_for for pk in expected]


def test_two_engines_never_claim_one_contact_twice(db):
    url, sessions, cid, _ = db
    with transaction(sessions) as s:
        for n in range(200):
            add_contact(s, cid, n)
    got: dict[str, list[int]] = {"a": [], "b": []}

    def worker(name):
        own = make_sessionmaker(make_engine(url))
        while True:
            with transaction(own) as s:
                campaign = load_campaign(s, cid)
                batch = claim_contacts(s, campaign, NOW, 3, node=name)
            if not batch:
                return
            got[name].extend(c.contact_id for c in batch)

    threads = [threading.Thread(target=worker, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    both = got["a"] + got["b"]
    assert len(both) == len(set(both)) == 200


def test_any_callback_due_is_never_no_when_a_claim_would_find_one(db):
    """The dialer asks this before a callback claim per free agent: 'no' must mean that no
    agent's claim could get one (a superset of what claims find, reservations aside)."""
    _, sessions, cid, agents = db

    def due(now=NOW):
        with transaction(sessions) as s:
            return any_callback_due(s, load_campaign(s, cid), now)

    with transaction(sessions) as s:
        add_contact(s, cid, 1)  # fresh, not a callback
        later = add_contact(s, cid, 2)
        add_callback(s, cid, later, NOW + dt.timedelta(minutes=5), agent_id=agents["ann"])
    assert not due()
    assert not due(NOW.replace(hour=22))  # outside the window: nothing at all
    soon = NOW + dt.timedelta(minutes=5)
    assert due(soon)  # reserved for ann: due for her
    assert claim(sessions, cid, now=soon, for_agent=agents["ann"], logged_in={agents["ann"]})
    assert not due(soon)  # claimed: dialing, no longer a callback to deliver
