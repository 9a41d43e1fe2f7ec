"""A generated contact-center history with known totals, for the report tests.

``build_history(session)`` inserts lines, agents, campaigns, enquiry categories and, for
each day of ``DAYS`` (around the 2026 spring DST change in Europe/Oslo, across a month and
an ISO-week boundary), inbound calls with offers/legs/missed calls, outbound attempts,
enquiries and agent state transitions — all from fixed formulas, no randomness.

While inserting, it records one plain *fact* per call/attempt/enquiry (what was decided
for it, with its local day worked out by ``zoneinfo``), and :class:`History` aggregates
those facts in Python to give the figures every report must show. The expected numbers
never come from the SQL under test. Edge cases on purpose: calls 30 s after and 60 s
before local midnight (a different UTC date), waits of exactly and just over the service
level, the 23-hour DST day, enquiries registered after midnight for a call before it,
agent states spanning midnight and several days, calls outside the period, calls that
never queued, outbound manual callbacks, enquiries without any topic, multi-choice picks.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from asterisk_cube.core import agents as core_agents
from asterisk_cube.db import models as m

ZONE = "Europe/Oslo"
TZ = ZoneInfo(ZONE)
# The history covers DAYS; reports are asked for FIRST..LAST, one day inside each end,
# so the first and last generated days test the period bounds.
DAYS = [dt.date(2026, 3, 25) + dt.timedelta(days=i) for i in range(10)]  # Wed 25 Mar - Fri 3 Apr
FIRST, LAST = DAYS[1], DAYS[-2]
LINES = [("4721000001", "Support"), ("4721000002", "Hotline line")]
AGENTS = ["anna", "bob", "cara"]
SL_MS = 20_000  # the default service level, 20 s


def local_midnight(day: dt.date) -> dt.datetime:
    # Europe/Oslo has no DST change at midnight, so the wall time is unambiguous
    return dt.datetime.combine(day, dt.time(), tzinfo=TZ).astimezone(dt.UTC)


def day_length(day: dt.date) -> int:
    return int((local_midnight(day + dt.timedelta(days=1)) - local_midnight(day)).total_seconds())


def local_day(t: dt.datetime) -> dt.date:
    return t.astimezone(TZ).date()


def bucket(day: dt.date, unit: str) -> dt.date:
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


# ---------------------------------------------------------------------- facts


@dataclass
class InboundFact:
    line: str
    day: dt.date
    answered: bool
    abandoned: bool
    wait_ms: int | None  # answered: queued -> answered
    abandon_ms: int | None  # abandoned: queued -> ended
    missed: bool
    processed: bool


@dataclass
class AttemptFact:
    campaign: str
    day: dt.date
    contact_id: int
    result: str | None


@dataclass
class EnquiryFact:
    id: int
    day: dt.date
    agent: str | None
    line: str | None
    campaign: str | None
    campaign_direction: str | None
    picks: list[tuple[str, str]]  # (category, topic)


@dataclass
class History:
    inbound: list[InboundFact] = field(default_factory=list)
    attempts: list[AttemptFact] = field(default_factory=list)
    enquiries: list[EnquiryFact] = field(default_factory=list)
    state_log: list[core_agents.StateLogRecord] = field(default_factory=list)
    agent_ids: dict[str, int] = field(default_factory=dict)
    line_ids: dict[str, int] = field(default_factory=dict)
    line_names: dict[str, str] = field(default_factory=dict)
    campaign_ids: dict[str, int] = field(default_factory=dict)
    category_ids: dict[str, int] = field(default_factory=dict)
    topic_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    until: dt.datetime = field(default_factory=lambda: local_midnight(DAYS[-1]))

    # ------------------------------------------------------------ expected figures

    @staticmethod
    def _in(day: dt.date, first: dt.date, last: dt.date) -> bool:
        return first <= day <= last

    def expected_inbound(
        self, keys: Sequence[str], sl_ms: int = SL_MS, first=FIRST, last=LAST, lines=None
    ) -> dict[tuple, dict]:
        groups: dict[tuple, list[InboundFact]] = defaultdict(list)
        for f in self.inbound:
            if not self._in(f.day, first, last) or (lines and f.line not in lines):
                continue
            groups[self._key(keys, f.day, line=f.line)].append(f)
        out = {}
        for key, facts in groups.items():
            waits = [f.wait_ms for f in facts if f.answered]
            abd = [f.abandon_ms for f in facts if f.abandoned]
            within = sum(1 for w in waits if w <= sl_ms)
            missed = sum(f.missed for f in facts)
            processed = sum(f.processed for f in facts)
            row = self._key_row(keys, key)
            row.update(
                offered=len(facts),
                answered=len(waits),
                abandoned=len(abd),
                other=len(facts) - len(waits) - len(abd),
                answered_within_sl=within,
                service_level=_ratio(within, len(facts)),
                avg_wait_answered=_avg_s(waits),
                max_wait_answered=_max_s(waits),
                avg_wait_abandoned=_avg_s(abd),
                max_wait_abandoned=_max_s(abd),
                missed=missed,
                missed_processed=processed,
                missed_processed_share=_ratio(processed, missed),
            )
            out[key] = row
        return out

    def expected_outbound(self, keys: Sequence[str], first=FIRST, last=LAST) -> dict[tuple, dict]:
        groups: dict[tuple, list[AttemptFact]] = defaultdict(list)
        for f in self.attempts:
            if self._in(f.day, first, last):
                groups[self._key(keys, f.day, campaign=f.campaign)].append(f)
        out = {}
        for key, facts in groups.items():
            res = [f.result for f in facts]
            reached = [f for f in facts if f.result in ("connected", "ended")]
            abandoned = res.count("abandoned")
            row = self._key_row(keys, key)
            row.update(
                attempts=len(facts),
                contacts_dialed=len({f.contact_id for f in facts}),
                answered=len(reached) + abandoned,
                reached=len(reached),
                contacts_reached=len({f.contact_id for f in reached}),
                abandoned=abandoned,
                abandon_rate=_ratio(abandoned, len(reached) + abandoned),
                no_answer=res.count("no_answer"),
                machine=res.count("machine"),
                failed=res.count("failed"),
                other=sum(
                    1
                    for r in res
                    if r
                    not in ("connected", "ended", "abandoned", "no_answer", "machine", "failed")
                ),
            )
            out[key] = row
        return out

    def expected_enquiries(
        self, keys: Sequence[str], first=FIRST, last=LAST, direction=None, agents=None
    ) -> dict[tuple, dict]:
        """Rows keyed like the report: topic grouping implies category."""
        keys = list(keys)
        if "topic" in keys and "category" not in keys:
            keys.insert(keys.index("topic"), "category")
        topical = "topic" in keys or "category" in keys
        facts = [
            f
            for f in self.enquiries
            if self._in(f.day, first, last)
            and (direction is None or f.campaign_direction == direction)
            and (agents is None or f.agent in agents)
        ]
        enq: dict[tuple, set[int]] = defaultdict(set)
        sel: dict[tuple, int] = defaultdict(int)
        base: dict[tuple, set[int]] = defaultdict(set)
        unit = next((k for k in keys if k in ("day", "week", "month")), None)
        base_keys = [k for k in keys if k not in ("category", "topic")] if topical else [unit]
        base_keys = [k for k in base_keys if k]
        for f in facts:
            attrs = {"agent": f.agent, "line": f.line, "campaign": f.campaign}
            base[self._key(base_keys, f.day, **attrs)].add(f.id)
            if topical:
                for category, topic in f.picks or [(None, None)]:
                    key = self._key(keys, f.day, category=category, topic=topic, **attrs)
                    enq[key].add(f.id)
                    sel[key] += topic is not None
            else:
                key = self._key(keys, f.day, **attrs)
                enq[key].add(f.id)
                sel[key] += len(f.picks)
        out = {}
        for key, ids in enq.items():
            row = self._key_row(keys, key)
            bkey = tuple(row[k] for k in base_keys)
            row.update(
                enquiries=len(ids), selections=sel[key], share=_ratio(len(ids), len(base[bkey]))
            )
            out[key] = row
        return out

    def expected_agent_states(
        self,
        keys: Sequence[str],
        now: dt.datetime | None = None,
        first=FIRST,
        last=LAST,
        include_logged_out=False,
    ) -> dict[tuple, dict]:
        """From the core's Python implementation of the same definition."""
        since, until = local_midnight(first), local_midnight(last + dt.timedelta(days=1))
        if now is not None:
            until = min(until, now)
        times = core_agents.time_in_states(
            self.state_log, ZONE, until, since=since, include_logged_out=include_logged_out
        )
        names = {v: k for k, v in self.agent_ids.items()}
        sums: dict[tuple, float] = defaultdict(float)
        for t in times:
            if not self._in(t.day, first, last):
                continue
            key = self._key(keys, t.day, agent=names[t.agent_id])
            sums[(*key, t.state.value, t.pause_reason)] += t.seconds
        out = {}
        for key, secs in sums.items():
            row = self._key_row(keys, key[:-2])
            row.update(state=key[-2], pause_reason=key[-1], seconds=round(secs, 3))
            out[key] = row
        return out

    # ------------------------------------------------------------------- keys

    def _key(self, keys, day, **attrs) -> tuple:
        out = []
        for k in keys:
            if k in ("day", "week", "month"):
                out.append(bucket(day, k))
            elif k == "topic":
                out.append(attrs.get("topic"))
            else:
                out.append(attrs.get(k))
        return tuple(out)

    def _key_row(self, keys, key) -> dict:
        row = {}
        attrs = dict(zip(keys, key, strict=True))
        for k in keys:
            v = attrs[k]
            if k in ("day", "week", "month"):
                row[k] = v
            elif k == "line":
                row.update(line_id=self.line_ids.get(v), line=v, line_name=self.line_names.get(v))
            elif k == "campaign":
                row.update(campaign_id=self.campaign_ids.get(v), campaign=v)
            elif k == "agent":
                row.update(agent_id=self.agent_ids.get(v), agent=v)
            elif k == "category":
                row.update(category_id=self.category_ids.get(v), category=v)
            elif k == "topic":
                cat = attrs.get("category")
                row.update(topic_id=self.topic_ids.get((cat, v)), topic=v)
        return row


def report_key(row: dict, keys: Sequence[str]) -> tuple:
    """The expected-figures key of a report row (names, not ids)."""
    keys = list(keys)
    if "topic" in keys and "category" not in keys and "category" in row:
        keys.insert(keys.index("topic"), "category")
    return tuple(row[k] for k in keys)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _avg_s(ms: list[int]) -> float | None:
    return round(sum(ms) / len(ms) / 1000.0, 3) if ms else None


def _max_s(ms: list[int]) -> float | None:
    return round(max(ms) / 1000.0, 3) if ms else None


# ------------------------------------------------------------------- builder


def _ms(n: int) -> dt.timedelta:
    return dt.timedelta(milliseconds=n)


def build_history(s: Session) -> History:
    h = History()
    # configuration
    spring = m.Campaign(name="Spring", direction=m.Direction.OUTBOUND, mode=m.DialMode.PREDICTIVE)
    autumn = m.Campaign(name="Autumn", direction=m.Direction.OUTBOUND, mode=m.DialMode.PREVIEW)
    hotline = m.Campaign(name="Hotline", direction=m.Direction.INBOUND)
    s.add_all([spring, autumn, hotline])
    s.flush()
    h.campaign_ids = {c.name: c.id for c in (spring, autumn, hotline)}
    lines = {}
    for (did, name), campaign in zip(LINES, (None, hotline), strict=True):
        lines[did] = m.Line(did=did, name=name, campaign_id=campaign.id if campaign else None)
        s.add(lines[did])
    s.add(m.Line(did="4721000009", name="Quiet"))  # never called: no rows
    agents = {u: m.Agent(username=u, name=u.title()) for u in AGENTS}
    s.add_all(agents.values())
    s.flush()
    h.line_ids = {d: line.id for d, line in lines.items()}
    h.line_names = {d: line.name for d, line in lines.items()}
    h.agent_ids = {u: a.id for u, a in agents.items()}

    categories = {
        "Reason": (None, False, ["Billing", "Support", "Other"]),
        "Products": (None, True, ["Alpha", "Beta"]),
        "Result": (spring.id, False, ["Sale", "Interested", "Not interested"]),
    }
    topics: dict[tuple[str, str], m.EnquiryTopic] = {}
    for name, (campaign_id, multi, topic_names) in categories.items():
        cat = m.EnquiryCategory(name=name, campaign_id=campaign_id, multi_choice=multi)
        s.add(cat)
        s.flush()
        h.category_ids[name] = cat.id
        for pos, tname in enumerate(topic_names):
            topic = m.EnquiryTopic(category_id=cat.id, name=tname, position=pos)
            s.add(topic)
            topics[(name, tname)] = topic
    s.flush()
    h.topic_ids = {k: t.id for k, t in topics.items()}

    contacts = {
        name: [
            m.Contact(campaign_id=h.campaign_ids[name], phone=f"+47400{ci:05d}{k}")
            for k in range(7)
        ]
        for ci, name in enumerate(("Spring", "Autumn"))
    }
    for cs in contacts.values():
        s.add_all(cs)
    s.flush()

    enquiry_no = 0

    def add_enquiry(call, created, agent, line_did, campaign, picks):
        nonlocal enquiry_no
        enquiry_no += 1
        e = m.Enquiry(
            call_id=call.id,
            agent_id=h.agent_ids[agent],
            line_id=h.line_ids.get(line_did) if line_did else None,
            campaign_id=h.campaign_ids[campaign] if campaign else None,
            created_at=created,
            topics=[topics[p] for p in picks],
        )
        s.add(e)
        s.flush()
        direction = {"Spring": "outbound", "Autumn": "outbound", "Hotline": "inbound"}
        h.enquiries.append(
            EnquiryFact(
                e.id,
                local_day(created),
                agent,
                line_did,
                campaign,
                direction.get(campaign),
                list(picks),
            )
        )

    for d, day in enumerate(DAYS):
        t0, length = local_midnight(day), day_length(day)
        # ----------------------------------------------------------- inbound
        for li, (did, _) in enumerate(LINES):
            n = 10 + 3 * d if li == 0 else 5 + d
            for i in range(n):
                queued = t0 + dt.timedelta(seconds=30 + i * (length - 90) // (n - 1))
                started = queued - dt.timedelta(seconds=4)
                kind = i % 10
                agent = AGENTS[(i + d) % 3]
                call = m.Call(
                    direction=m.Direction.INBOUND,
                    kind=m.CallKind.SERVICE if li == 0 else m.CallKind.NEW_CUSTOMER,
                    state=m.CallState.ENDED,
                    line_id=h.line_ids[did],
                    campaign_id=hotline.id if li == 1 else None,
                    caller_number=f"+4790{d:02d}{li}{i:04d}",
                    started_at=started,
                    queued_at=queued,
                )
                fact = InboundFact(did, local_day(queued), False, False, None, None, False, False)
                if kind in (6, 7):  # abandoned
                    wait = 3000 + i * 1000 + 7
                    call.state = m.CallState.MISSED
                    call.ended_at = queued + _ms(wait)
                    fact.abandoned, fact.abandon_ms = True, wait
                elif kind == 8:  # failed while queued: neither answered nor abandoned
                    call.state = m.CallState.FAILED
                    call.ended_at = queued + _ms(1500)
                else:
                    wait = {1: SL_MS, 2: SL_MS + 1, 5: 0}.get(kind, (i * 7919 + d * 1049) % 60000)
                    call.answered_at = queued + _ms(wait)
                    call.ended_at = call.answered_at + dt.timedelta(seconds=60 + i)
                    call.agent_id = h.agent_ids[agent]
                    fact.answered, fact.wait_ms = True, wait
                s.add(call)
                s.flush()
                h.inbound.append(fact)
                # legs and offers: not counted by the inbound report, there for realism
                s.add(m.CallLeg(call_id=call.id, role=m.LegRole.CALLER, started_at=started))
                if call.answered_at:
                    if kind == 3:  # first offer timed out at another agent
                        s.add(
                            m.CallOffer(
                                call_id=call.id,
                                agent_id=h.agent_ids[AGENTS[(i + d + 1) % 3]],
                                offered_at=queued,
                                decided_at=queued + _ms(1),
                                result=m.OfferResult.TIMEOUT,
                            )
                        )
                    s.add(
                        m.CallOffer(
                            call_id=call.id,
                            agent_id=call.agent_id,
                            offered_at=queued,
                            decided_at=call.answered_at,
                            result=m.OfferResult.ACCEPTED,
                        )
                    )
                    s.add(
                        m.CallLeg(
                            call_id=call.id,
                            role=m.LegRole.AGENT,
                            agent_id=call.agent_id,
                            started_at=queued,
                            answered_at=call.answered_at,
                            ended_at=call.ended_at,
                        )
                    )
                    picks = [("Reason", ("Billing", "Support", "Other")[i % 3])]
                    if i % 4 == 0:
                        picks += [("Products", "Alpha")] + ([("Products", "Beta")] * (i % 8 == 0))
                    if kind == 9:
                        picks = []  # a comment only
                    # registered after the call: after midnight for the day's last calls
                    add_enquiry(
                        call,
                        call.ended_at + dt.timedelta(seconds=5),
                        agent,
                        did,
                        "Hotline" if li == 1 else None,
                        picks,
                    )
                if call.state == m.CallState.MISSED:
                    processed = i % 4 != 3
                    missed = m.MissedCall(
                        call_id=call.id,
                        line_id=h.line_ids[did],
                        caller_number=call.caller_number,
                        missed_at=call.ended_at,
                    )
                    fact.missed = True
                    if processed:
                        back = m.Call(
                            direction=m.Direction.OUTBOUND,
                            kind=m.CallKind.MANUAL,
                            state=m.CallState.ENDED,
                            line_id=h.line_ids[did],
                            agent_id=h.agent_ids[agent],
                            started_at=call.ended_at + dt.timedelta(minutes=5),
                            answered_at=call.ended_at + dt.timedelta(minutes=5, seconds=9),
                        )
                        s.add(back)
                        s.flush()
                        missed.processed_at = back.answered_at
                        missed.processed_by = h.agent_ids[agent]
                        missed.callback_call_id = back.id
                        fact.processed = True
                    s.add(missed)
        # calls that never entered a queue (ad-blocked) are not offered
        s.add(
            m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.ANSWERING,
                state=m.CallState.BLOCKED,
                line_id=h.line_ids[LINES[0][0]],
                started_at=t0 + dt.timedelta(hours=12),
                ended_at=t0 + dt.timedelta(hours=12, seconds=5),
            )
        )
        # ---------------------------------------------------------- outbound
        results = ["ended", "ended", "ended", "connected", "abandoned", "no_answer", "machine"]
        results += ["failed"]
        for name, n in (("Spring", 20 + d), ("Autumn", 8 + d)):
            for j in range(n):
                contact = contacts[name][(j + 3 * d) % 7]
                result: str | None = results[j % 8]
                if name == "Autumn" and j % 11 == 10:
                    result = None  # still dialing
                started = t0 + (
                    dt.timedelta(seconds=30) if j == 0 else dt.timedelta(hours=8, minutes=2 * j)
                )
                if j == n - 1:
                    started = t0 + dt.timedelta(seconds=length - 60)
                agent = AGENTS[j % 3]
                call = m.Call(
                    direction=m.Direction.OUTBOUND,
                    kind=m.CallKind.PREDICTIVE if name == "Spring" else m.CallKind.PREVIEW,
                    state=m.CallState(result) if result else m.CallState.DIALING,
                    campaign_id=h.campaign_ids[name],
                    contact_id=contact.id,
                    started_at=started,
                )
                reached = result in ("ended", "connected")
                if reached:
                    call.answered_at = started + dt.timedelta(seconds=8)
                    call.ended_at = started + dt.timedelta(seconds=100)
                    call.agent_id = h.agent_ids[agent]
                s.add(call)
                s.flush()
                s.add(
                    m.ContactAttempt(
                        contact_id=contact.id,
                        campaign_id=h.campaign_ids[name],
                        call_id=call.id,
                        agent_id=call.agent_id,
                        started_at=started,
                        ended_at=call.ended_at,
                        result=m.CallState(result) if result else None,
                    )
                )
                h.attempts.append(AttemptFact(name, local_day(started), contact.id, result))
                if reached:
                    if name == "Spring":
                        picks = [("Result", ("Sale", "Interested", "Not interested")[j % 3])]
                    else:
                        picks = [("Reason", "Other")]
                    add_enquiry(call, call.ended_at, agent, None, name, picks)
        # ------------------------------------------------------- agent states
        log = []
        a = 8 * 3600  # anna: a day shift with two pauses
        for off, frm, to, why in [
            (a, "logged_out", "ready", "login"),
            (a + 3600, "ready", "offered", "offer"),
            (a + 3610, "offered", "busy", "accept"),
            (a + 5400, "busy", "wrap_up", "call_ended"),
            (a + 5460, "wrap_up", "ready", "wrap_up_expired"),
            (a + 4 * 3600, "ready", "paused", "lunch"),
            (a + 4 * 3600 + 1800, "paused", "ready", "make_ready"),
            (a + 7 * 3600, "ready", "paused", "break"),
            (a + 7 * 3600 + 900, "paused", "ready", "make_ready"),
            (a + 8 * 3600 + d * 60, "ready", "logged_out", "logout"),
        ]:
            log.append(("anna", t0 + dt.timedelta(seconds=off), frm, to, why))
        b = length - 2 * 3600  # bob: a night shift across local midnight
        for off, frm, to, why in [
            (b, "logged_out", "ready", "login"),
            (b + 5400, "ready", "busy", "call_started"),
            (length + 1800, "busy", "wrap_up", "call_ended"),
            (length + 2400, "wrap_up", "ready", "make_ready"),
            (length + 6 * 3600, "ready", "logged_out", "logout"),
        ]:
            log.append(("bob", t0 + dt.timedelta(seconds=off), frm, to, why))
        if d == 2:  # cara: paused for training over several days, then a short shift
            log.append(("cara", t0 + dt.timedelta(hours=10), "logged_out", "ready", "login"))
            log.append(("cara", t0 + dt.timedelta(hours=11), "ready", "paused", "training"))
        if d == 5:
            log.append(("cara", t0 + dt.timedelta(hours=14), "paused", "ready", "make_ready"))
            log.append(("cara", t0 + dt.timedelta(hours=18), "ready", "logged_out", "logout"))
        for who, at, frm, to, why in log:
            s.add(
                m.AgentStateLog(
                    agent_id=h.agent_ids[who],
                    at=at,
                    from_state=m.AgentState(frm),
                    to_state=m.AgentState(to),
                    reason=why,
                )
            )
            h.state_log.append(
                core_agents.StateLogRecord(
                    agent_id=h.agent_ids[who],
                    at=at,
                    from_state=core_agents.AgentState(frm),
                    to_state=core_agents.AgentState(to),
                    reason=why,
                )
            )
    s.flush()
    return h
