"""Two ``serve`` processes on one PostgreSQL database never claim a contact twice
(dialer/claims.py: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED))."""

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from asterisk_cube.core.contacts import PickKind
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.dialer.campaigns import load_campaign
from asterisk_cube.dialer.claims import claim_contacts
from asterisk_cube.services import provisioning as p

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def pg_db(pg_db):
    """The shared fixture's empty database, migrated."""
    upgrade(pg_db)
    return pg_db


def test_two_processes_claim_disjoint_contacts(pg_db):
    sessions = make_sessionmaker(make_engine(pg_db))
    with transaction(sessions) as s:
        c = p.add_campaign(s, "Sales", mode="predictive", max_attempts=2)
        p.set_campaign_status(s, "Sales", "running")
        agent = p.add_agent(s, "ann", endpoint="PJSIP/ann")
        cid = c.id
        for n in range(600):
            s.add(m.Contact(campaign_id=cid, phone=f"+479{n:07d}"))
        s.flush()
        # some due retries and callbacks too
        for row in s.scalars(select(m.Contact).where(m.Contact.id % 7 == 0)):
            row.status = m.ContactStatus.NOT_ANSWERED
            row.attempts = 1
            row.next_attempt_at = NOW - dt.timedelta(minutes=row.id % 30)
        for row in s.scalars(select(m.Contact).where(m.Contact.id % 11 == 0)):
            row.status = m.ContactStatus.CALLBACK
            row.attempts = 0
            s.add(
                m.ScheduledCallback(
                    contact_id=row.id,
                    campaign_id=cid,
                    agent_id=agent.id if row.id % 2 else None,
                    due_at=NOW - dt.timedelta(minutes=1),
                )
            )
    got: dict[str, list[int]] = {"node-a": [], "node-b": [], "node-c": []}
    errors: list[BaseException] = []
    start = threading.Barrier(len(got))

    def serve(node):
        try:
            engine = make_engine(pg_db)  # its own engine, as another process has
            own = make_sessionmaker(engine)
            start.wait()
            rounds = 0
            while True:
                with transaction(own) as s:
                    campaign = load_campaign(s, cid)
                    batch = claim_contacts(
                        s,
                        campaign,
                        NOW,
                        1 + rounds % 5,
                        node=node,
                        for_agent=agent.id if rounds % 3 == 0 else None,
                        logged_in={agent.id},
                    )
                rounds += 1
                if not batch:
                    engine.dispose()
                    return
                got[node].extend(c.contact_id for c in batch)
                if any(c.kind is PickKind.CALLBACK and c.reserved_for for c in batch):
                    assert rounds % 3 == 1  # reserved callbacks only when dialing for the agent
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    claimed = [cid_ for ids in got.values() for cid_ in ids]
    assert len(claimed) == len(set(claimed)) == 600
    assert all(len(ids) > 50 for ids in got.values()), {k: len(v) for k, v in got.items()}
    with transaction(sessions) as s:
        rows = s.scalars(select(m.Contact)).all()
        assert {r.status for r in rows} == {m.ContactStatus.DIALING}
        owner = {cid_: node for node, ids in got.items() for cid_ in ids}
        assert all(r.claimed_by == owner[r.id] for r in rows)
        assert max(r.attempts for r in rows) == 2
