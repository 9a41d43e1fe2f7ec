"""What the call distributor writes to the database, as plain functions of a session.

The distributor queues these on its write-behind journal (:mod:`asterisk_cube.db.journal`)
with the values of the moment (``functools.partial``), never live objects, so the
worker thread that writes them reads nothing the event loop may be changing. The
database is the record of what happened (reports, restart recovery); the distributor's
memory is what decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from asterisk_cube.core import agents as ag
from asterisk_cube.db import models as m

_CALLS = m.Call.__table__
_LEGS = m.CallLeg.__table__
_OFFERS = m.CallOffer.__table__
_MISSED = m.MissedCall.__table__
_STATUS = m.AgentStatus.__table__
_STATE_LOG = m.AgentStateLog.__table__
_CONTACTS = m.Contact.__table__


def persist_agent(
    s: Session,
    agent_id: int,
    status: ag.AgentStatus,
    card_call_id: int | None,
    record: ag.StateLogRecord | None,
    now: dt.datetime,
) -> None:
    """The agent's current status row, and the state-time log record of the change."""
    values = dict(
        state=m.AgentState(status.state.value),
        since=status.since or now,
        pause_reason=status.pause_reason,
        pause_requested=status.pause_requested,
        wrap_up_until=status.wrap_up_until,
        call_id=card_call_id,
        idle_since=status.idle_since,
    )
    done = s.execute(_STATUS.update().where(_STATUS.c.agent_id == agent_id).values(**values))
    if done.rowcount == 0:
        s.execute(_STATUS.insert().values(agent_id=agent_id, **values))
    if record is not None and record.from_state != record.to_state:
        s.execute(
            _STATE_LOG.insert().values(
                agent_id=agent_id,
                at=record.at,
                from_state=m.AgentState(record.from_state.value),
                to_state=m.AgentState(record.to_state.value),
                reason=record.reason,
            )
        )


def insert_arrival(s: Session, call: dict, channel_id: str, at: dt.datetime) -> None:
    """A caller entered the app: its call row (id allocated beforehand) and caller leg."""
    s.execute(_CALLS.insert().values(**call))
    s.execute(
        _LEGS.insert().values(
            call_id=call["id"], role=m.LegRole.CALLER, channel_id=channel_id, started_at=at
        )
    )


def create_contact(s: Session, call_id: int, campaign_id: int, phone: str) -> int:
    """A hotline's new caller becomes a contact of its campaign (F-I3); returns its id."""
    contact = m.Contact(campaign_id=campaign_id, phone=phone, status=m.ContactStatus.NEW)
    s.add(contact)
    s.flush()
    update_call(s, call_id, contact_id=contact.id)
    return contact.id


def update_call(s: Session, call_id: int, **values) -> None:
    s.execute(_CALLS.update().where(_CALLS.c.id == call_id).values(**values))


def insert_offer(s: Session, offer_id: int, call_id: int, agent_id: int, at: dt.datetime) -> None:
    s.execute(
        _OFFERS.insert().values(
            id=offer_id,
            call_id=call_id,
            agent_id=agent_id,
            offered_at=at,
            result=m.OfferResult.PENDING,
        )
    )
    update_call(s, call_id, state=m.CallState.OFFERED)


def end_offer(s: Session, offer_id: int, result: m.OfferResult, at: dt.datetime) -> None:
    s.execute(_OFFERS.update().where(_OFFERS.c.id == offer_id).values(result=result, decided_at=at))


def end_leg(s: Session, channel_id: str, at: dt.datetime, cause: str) -> None:
    s.execute(
        _LEGS.update()
        .where(_LEGS.c.channel_id == channel_id, _LEGS.c.ended_at.is_(None))
        .values(ended_at=at, cause=cause)
    )


def insert_missed(
    s: Session, missed_id: int, call_id: int, line_id: int | None, caller: str, at: dt.datetime
) -> None:
    s.execute(
        _MISSED.insert().values(
            id=missed_id, call_id=call_id, line_id=line_id, caller_number=caller, missed_at=at
        )
    )


def insert_agent_leg(
    s: Session, call_id: int, channel_id: str, endpoint: str, agent_id: int, at: dt.datetime
) -> None:
    s.execute(
        _LEGS.insert().values(
            call_id=call_id,
            role=m.LegRole.AGENT,
            channel_id=channel_id,
            endpoint=endpoint,
            agent_id=agent_id,
            started_at=at,
            answered_at=at,
        )
    )


def insert_contact_leg(
    s: Session, call_id: int, channel_id: str, number: str, at: dt.datetime
) -> None:
    """The answered leg to the person called (a missed-call callback's customer)."""
    s.execute(
        _LEGS.insert().values(
            call_id=call_id,
            role=m.LegRole.CONTACT,
            channel_id=channel_id,
            endpoint=number,
            started_at=at,
            answered_at=at,
        )
    )


def set_last_agent(s: Session, contact_id: int, agent_id: int) -> None:
    s.execute(_CONTACTS.update().where(_CONTACTS.c.id == contact_id).values(last_agent_id=agent_id))


@dataclass(frozen=True)
class Write:
    """One queued ``acd.records`` call: ``op(session, *args, **kwargs)``."""

    op: Callable
    args: tuple
    kwargs: dict

    def __call__(self, s: Session):
        return self.op(s, *self.args, **self.kwargs)

    def __repr__(self) -> str:  # named in the journal's error log
        return f"{self.op.__qualname__}{self.args!r}"
