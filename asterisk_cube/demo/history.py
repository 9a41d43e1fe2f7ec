"""A month of generated history for the demo (issue #16): every report and chart has
content on first open.

``generate_history(session, days=30)`` writes, for each of the last ``days`` days before
today (Europe/Oslo) and for the demo's lines, agents and campaign (``services/demo_data``),
what ``serve`` would have written: inbound calls with their offers, legs and enquiries,
callers who gave up (missed calls, called back and processed), ad-blocked calls on the
answering-service line, the outbound campaign's dial attempts with results, and every
agent's state transitions (login, calls, wrap-up, lunch and breaks, logout). Busier on
Mondays and mornings, quiet at weekends; everything ends before today, so nothing is live.
Drawn from a seeded ``random.Random``: the same seed gives the same history.

Refused on a database that already holds calls (it would mix with real ones).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services.demo_data import (
    ADBLOCKED,
    CLIENT,
    CLIENT_DID,
    HOTLINE_DID,
    OUTBOUND_CAMPAIGN,
    SERVICE_DID,
)
from asterisk_cube.services.provisioning import ProvisioningError

ZONE = ZoneInfo("Europe/Oslo")
#: inbound calls per weekday (Monday first) on a full day, per line
DAILY = {SERVICE_DID: 60, HOTLINE_DID: 30, CLIENT_DID: 20}
WEEKDAY_FACTOR = (1.3, 1.1, 1.0, 1.0, 0.8, 0.15, 0.0)
#: the hour profile of arrivals (08:00 .. 15:59, local)
HOURS = (8, 9, 10, 11, 12, 13, 14, 15)
HOUR_WEIGHTS = (0.8, 1.4, 1.5, 1.2, 0.7, 1.1, 1.0, 0.7)
OUTBOUND_PER_DAY = 120


@dataclass
class _Agent:
    id: int
    free_at: dt.datetime
    log: list[tuple[dt.datetime, str, str, str]]
    state: str = "logged_out"

    def move(self, at: dt.datetime, to: str, reason: str) -> None:
        if to != self.state:
            self.log.append((at, self.state, to, reason))
            self.state = to


def _local(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZONE).astimezone(
        dt.UTC
    )


def generate_history(
    s: Session, days: int = 30, *, seed: int = 16, today: dt.date | None = None
) -> str:
    """Write ``days`` days of history before ``today`` (see the module docstring)."""
    if not 1 <= days <= 366:
        raise ProvisioningError(f"history days must be 1..366, got {days}")
    if s.scalar(select(func.count()).select_from(m.Call)):
        raise ProvisioningError(
            "this database already has calls: the generated history is only written into a "
            "database without any (load the demo into a fresh one)"
        )
    lines = {ln.did: ln for ln in s.scalars(select(m.Line))}
    missing = [did for did in DAILY if did not in lines]
    campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == OUTBOUND_CAMPAIGN))
    client = s.scalar(select(m.Client).where(m.Client.name == CLIENT))
    if missing or campaign is None or client is None:
        raise ProvisioningError("the demo data is not loaded: run `asterisk-cube demo load` first")
    agents = list(
        s.scalars(
            select(m.Agent)
            .where(m.Agent.role == m.Role.AGENT, m.Agent.active.is_(True))
            .order_by(m.Agent.username)
        )
    )
    if not agents:
        raise ProvisioningError("the demo has no agents: run `asterisk-cube demo load` first")
    sales = [a for a in agents if any(k.id == campaign.skill_id for k in a.skills)] or agents
    topics = {
        cat.name: (cat, list(cat.topics))
        for cat in s.scalars(select(m.EnquiryCategory))
        if cat.topics
    }
    rng = random.Random(seed)
    today = today or dt.datetime.now(ZONE).date()
    totals = {"inbound": 0, "missed": 0, "blocked": 0, "outbound": 0, "enquiries": 0}
    made = 0  # contacts

    def enquiry(call: m.Call, agent_id: int, at: dt.datetime, outbound: bool) -> None:
        picks: list[m.EnquiryTopic] = []
        if outbound:
            _cat, outcome = topics.get("Outcome", (None, []))
            if outcome:
                picks.append(rng.choices(outcome, weights=[3, 5, 2, 4][: len(outcome)])[0])
        else:
            for name in ("Customer's mood", "Product", "Support"):
                if name in topics and (name == "Customer's mood" or rng.random() < 0.6):
                    picks.append(rng.choice(topics[name][1]))
        s.add(
            m.Enquiry(
                call_id=call.id,
                agent_id=agent_id,
                line_id=call.line_id,
                campaign_id=call.campaign_id,
                contact_id=call.contact_id,
                created_at=at,
                topics=picks,
            )
        )
        totals["enquiries"] += 1

    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        factor = WEEKDAY_FACTOR[day.weekday()]
        if factor == 0:
            continue
        working = rng.sample(agents, k=max(1, round(len(agents) * (0.6 + 0.4 * min(factor, 1)))))
        crew = {a.id: _Agent(a.id, _local(day, 8, rng.randint(0, 10)), []) for a in working}
        for ag in crew.values():
            ag.move(ag.free_at, "ready", "login")
        arrivals: list[tuple[dt.datetime, str]] = []
        for did, per_day in DAILY.items():
            for _ in range(round(per_day * factor * rng.uniform(0.8, 1.2))):
                hour = rng.choices(HOURS, weights=HOUR_WEIGHTS)[0]
                arrivals.append((_local(day, hour, rng.randrange(60), rng.randrange(60)), did))
        arrivals.sort()
        lunch = {a: _local(day, 11, rng.randint(15, 45)) for a in crew}
        day_calls: list[tuple[m.Call, int | None, str, m.Contact | None]] = []
        for queued, did in arrivals:
            line = lines[did]
            number = f"+47{rng.choice('49')}{rng.randrange(10**7):07d}"
            kind = {
                CLIENT_DID: m.CallKind.ANSWERING,
                HOTLINE_DID: m.CallKind.NEW_CUSTOMER,
            }.get(did, m.CallKind.SERVICE)
            if did == CLIENT_DID and rng.random() < 0.08:
                number = rng.choice(ADBLOCKED)
                s.add(
                    m.Call(
                        direction=m.Direction.INBOUND,
                        kind=kind,
                        state=m.CallState.BLOCKED,
                        line_id=line.id,
                        client_id=client.id,
                        caller_number=number,
                        started_at=queued,
                        ended_at=queued + dt.timedelta(seconds=3),
                        end_reason="adblock",
                    )
                )
                s.add(
                    m.AdblockVerdict(
                        at=queued,
                        client_id=client.id,
                        caller=number,
                        blocked=True,
                        reason="client_blocklist",
                    )
                )
                totals["blocked"] += 1
                continue
            # lunch: half an hour from the first free moment after its planned start
            for ag in crew.values():
                if ag.id in lunch and max(ag.free_at, queued) >= lunch[ag.id]:
                    start = max(ag.free_at, lunch.pop(ag.id))
                    ag.move(start, "paused", "lunch")
                    ag.free_at = start + dt.timedelta(minutes=30)
                    ag.move(ag.free_at, "ready", "make_ready")
            # the agent free soonest answers; a long wait makes some callers give up first
            ag = min(crew.values(), key=lambda a: a.free_at)
            offered = max(ag.free_at, queued) + dt.timedelta(seconds=rng.uniform(0.5, 2))
            answered = offered + dt.timedelta(seconds=rng.uniform(1.5, 6))
            wait = (answered - queued).total_seconds()
            patience = rng.expovariate(1 / 90)
            call = m.Call(
                direction=m.Direction.INBOUND,
                kind=kind,
                state=m.CallState.ENDED,
                line_id=line.id,
                campaign_id=line.campaign_id,
                client_id=client.id if did == CLIENT_DID else None,
                caller_number=number,
                started_at=queued - dt.timedelta(seconds=2),
                queued_at=queued,
                line_priority=line.priority,
            )
            if patience < wait:
                call.state = m.CallState.MISSED
                call.ended_at = queued + dt.timedelta(seconds=patience)
                day_calls.append((call, None, "missed", None))
                totals["missed"] += 1
                continue
            call.answered_at = answered
            talk = rng.lognormvariate(4.9, 0.5)  # about 2-3 minutes, a long tail
            call.ended_at = call.answered_at + dt.timedelta(seconds=talk)
            call.agent_id = ag.id
            call.registration_done = True
            ag.move(offered, "offered", "offer")
            ag.move(call.answered_at, "busy", "accept")
            ag.move(call.ended_at, "wrap_up", "call_ended")
            wrap = rng.uniform(10, 60)
            ag.free_at = call.ended_at + dt.timedelta(seconds=wrap)
            ag.move(ag.free_at, "ready", "wrap_up_expired")
            if rng.random() < 0.05:  # a short break after a call now and then
                ag.move(ag.free_at, "paused", "break")
                ag.free_at += dt.timedelta(minutes=rng.randint(5, 15))
                ag.move(ag.free_at, "ready", "make_ready")
            day_calls.append((call, ag.id, "answered", None))
            totals["inbound"] += 1
        # outbound: the campaign dials in the afternoon, agents with its skill talk
        dials = round(OUTBOUND_PER_DAY * factor * rng.uniform(0.8, 1.2))
        callers = [crew[a.id] for a in sales if a.id in crew]
        for _ in range(dials if callers else 0):
            started = _local(day, rng.choice((13, 14, 15)), rng.randrange(60), rng.randrange(60))
            contact = m.Contact(
                campaign_id=campaign.id,
                phone=f"+479{rng.randrange(10**7):07d}",
                name=f"Customer {made + 1}",
                attempts=1,
                last_attempt_at=started,
                created_at=_local(today - dt.timedelta(days=days + 1), 9),
            )
            made += 1
            s.add(contact)
            x = rng.random()
            if x < 0.33:
                result = m.CallState.ENDED
            elif x < 0.345:
                result = m.CallState.ABANDONED
            elif x < 0.40:
                result = m.CallState.MACHINE
            elif x < 0.85:
                result = m.CallState.NO_ANSWER
            else:
                result = m.CallState.FAILED
            call = m.Call(
                direction=m.Direction.OUTBOUND,
                kind=m.CallKind.PREDICTIVE,
                state=result,
                campaign_id=campaign.id,
                dialed_number=contact.phone,
                started_at=started,
                ended_at=started + dt.timedelta(seconds=rng.uniform(8, 30)),
            )
            agent_id = None
            if result == m.CallState.ENDED:
                ag = rng.choice(callers)
                agent_id = ag.id
                call.answered_at = started + dt.timedelta(seconds=rng.uniform(4, 15))
                call.ended_at = call.answered_at + dt.timedelta(seconds=rng.uniform(40, 240))
                call.agent_id = ag.id
                contact.status = m.ContactStatus.DONE
                contact.last_agent_id = ag.id
            else:
                contact.status = m.ContactStatus.NOT_ANSWERED
            day_calls.append((call, agent_id, "outbound", contact))
            totals["outbound"] += 1
        end = _local(day, 16, rng.randint(0, 20))
        for ag in crew.values():
            ag.move(max(end, ag.free_at), "logged_out", "logout")
        s.add_all([c for c, _a, _k, _c in day_calls])
        s.flush()
        for call, agent_id, what, the_contact in day_calls:
            call_end, call_answer = call.ended_at, call.answered_at
            assert call_end is not None  # every generated call has ended
            if what == "missed":
                s.add(
                    m.MissedCall(
                        call_id=call.id,
                        line_id=call.line_id,
                        caller_number=call.caller_number,
                        missed_at=call_end,
                        processed_at=call_end + dt.timedelta(minutes=rng.randint(3, 40)),
                        processed_by=rng.choice(list(crew)),
                    )
                )
            elif what == "answered":
                assert call_answer is not None and agent_id is not None
                s.add(
                    m.CallOffer(
                        call_id=call.id,
                        agent_id=agent_id,
                        offered_at=call_answer - dt.timedelta(seconds=3),
                        decided_at=call_answer,
                        result=m.OfferResult.ACCEPTED,
                    )
                )
                enquiry(call, agent_id, call_end + dt.timedelta(seconds=20), False)
            if what == "outbound" and the_contact is not None:
                call.contact_id = the_contact.id
                s.add(
                    m.ContactAttempt(
                        contact_id=the_contact.id,
                        campaign_id=campaign.id,
                        call_id=call.id,
                        agent_id=agent_id,
                        started_at=call.started_at,
                        ended_at=call.ended_at,
                        result=call.state,
                    )
                )
                if agent_id is not None:
                    enquiry(call, agent_id, call_end + dt.timedelta(seconds=15), True)
        for ag in crew.values():
            s.add_all(
                m.AgentStateLog(
                    agent_id=ag.id,
                    at=at,
                    from_state=m.AgentState(frm),
                    to_state=m.AgentState(to),
                    reason=why,
                )
                for at, frm, to, why in sorted(ag.log, key=lambda e: e[0])
            )
        s.flush()
    return (
        f"history of {days} days: {totals['inbound']} answered and {totals['missed']} missed "
        f"inbound calls, {totals['blocked']} ad-blocked, {totals['outbound']} outbound dials, "
        f"{totals['enquiries']} enquiries"
    )
