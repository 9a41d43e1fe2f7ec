"""The distributor's write-behind journal and id allocation on a real PostgreSQL server:
the same calls as on SQLite end in the same rows, with ids from the sequences."""

import asyncio

import pytest
from dbkit import call_row
from sqlalchemy import select
from support.fakes import FakeTelephony as Telephony

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def pg_sessions(pg_db):
    upgrade(pg_db)
    engine = make_engine(pg_db)
    yield make_sessionmaker(engine)
    engine.dispose()


async def test_calls_offers_and_missed_calls_are_written_behind(pg_sessions):
    sessions = pg_sessions
    with transaction(sessions) as s:
        p.add_campaign(s, "Hot", direction="inbound")
        p.add_line(s, "100", "Support")
        p.add_line(s, "300", "Hotline", campaign="Hot")
        p.add_agent(s, "ann", endpoint="PJSIP/ann", lines=["100", "300"])
        ann = s.scalar(select(m.Agent)).id
        lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
    d = Distributor(sessions, EventHub(), Telephony())
    d.load()
    await d.login(ann)
    await d.choose_lines(ann, list(lines.values()))
    await d.ready(ann)

    talked = d.call_arrived("ch-1", lines["300"], "91234567")  # hotline: a new contact
    await d.accept(ann, talked)
    for _ in range(5):
        await asyncio.sleep(0)
    waiting = d.call_arrived("ch-2", lines["100"], "91000002")  # ann is busy: it waits
    d.caller_left("ch-2")  # ... and hangs up: a missed call
    d.caller_left("ch-1")
    await d.journal.drain()
    assert d.journal.failures == 0

    with transaction(sessions) as s:
        one, two = s.get(m.Call, talked), s.get(m.Call, waiting)
        assert (one.state, one.agent_id, one.answered_at is not None) == (
            m.CallState.ENDED,
            ann,
            True,
        )
        assert one.contact_id is not None
        assert s.get(m.Contact, one.contact_id).phone == "+4791234567"
        assert two.state == m.CallState.MISSED
        offers = s.scalars(select(m.CallOffer).where(m.CallOffer.call_id == talked)).all()
        assert [o.result for o in offers] == [m.OfferResult.ACCEPTED]
        missed = s.scalar(select(m.MissedCall))
        assert missed.call_id == waiting and missed.id in d.missed
        legs = sorted(leg.role.value for leg in s.scalars(select(m.CallLeg)))
        assert legs == ["agent", "caller", "caller"]
        states = [r.to_state.value for r in s.scalars(select(m.AgentStateLog))]
        assert "busy" in states and "offered" in states
        # the column default (the sequence) and the allocator never collide
        s.add(call_row(started_at=one.started_at))
    assert d.ids.next(m.Call) not in (talked, waiting)
    await d.close()


def test_the_caller_lookup_finds_an_open_outbound_contact(pg_sessions):
    from asterisk_cube.acd.caller_lookup import CallerLookup

    with transaction(pg_sessions) as s:
        p.add_campaign(s, "Out", mode="power", wrap_up=30)
        camp = s.scalar(select(m.Campaign))
        camp.status = m.CampaignStatus.RUNNING
        s.add(m.Contact(campaign_id=camp.id, phone="+4791000001", attempts=1))
        s.add(m.Contact(campaign_id=camp.id, phone="+4791000002", attempts=0))  # never dialed
    lookup = CallerLookup(pg_sessions.kw["bind"])
    found = lookup("+4791000001")
    assert found is not None and found[1] == camp.id and found[5] == 30
    assert lookup("+4791000002") is None and lookup("+4799999999") is None
    lookup.close()
