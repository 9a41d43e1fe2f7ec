"""One queue across nodes, the pure parts and the claim (issue #14): queue notifications,
the mirror of the other nodes' waiting calls, and the conditional claim (one node wins, 0
rows = someone else took it). Wired into serve by acd/crossnode.py (test_global_queue_*)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from asterisk_cube.acd.crossnode_claims import claim, return_dead_claims, unclaim
from asterisk_cube.core.queue_mirror import QueueEvent, WaitingMirror, decode, encode
from asterisk_cube.core.routing import CallType, assignments
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


def waiting(call_id: int, node: str, line: int = 1, seconds: int = 0) -> QueueEvent:
    return QueueEvent(
        "waiting", call_id, node, line, CallType.SERVICE, T0 + dt.timedelta(0, seconds)
    )


def test_an_event_survives_the_notify_payload():
    event = waiting(42, "node-b", line=3, seconds=5)
    assert decode(encode(event)) == event
    ended = QueueEvent("ended", 42, "b")
    assert decode(encode(ended)) == ended


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "waiting|42|3|service|2026-12-06T09:00:00+00:00",  # no node
        "lost|42|3|service||b",  # unknown kind
        "waiting|x|3|service||b",
        "waiting|42|3|bogus||b",
        "waiting|42|3|service|not-a-time|b",
        "waiting|42|3|service|2026-12-06T09:00:00|b",  # no zone: refused
        "waiting|42|3|service||",
    ],
)
def test_a_bad_payload_is_ignored(payload):
    assert decode(payload) is None


def test_the_mirror_holds_other_nodes_waiting_calls_until_they_leave():
    mirror = WaitingMirror("a")
    assert not mirror.apply(waiting(1, "a"))  # our own: the distributor has it
    assert mirror.apply(waiting(2, "b", seconds=2))
    assert mirror.apply(waiting(3, "c", seconds=1))
    assert [c.call_id for c in mirror.waiting()] == [3, 2]  # oldest first
    assert mirror.node_of(2) == "b"
    assert mirror.apply(QueueEvent("offered", 2, "c"))  # offered by anyone: gone
    assert not mirror.apply(QueueEvent("ended", 2, "b"))
    assert mirror.node_down("c") == 1  # its callers cannot be bridged while it is down
    assert len(mirror) == 0


def test_routing_takes_mirrored_calls_in_global_order():
    from asterisk_cube.core.agents import AgentState
    from asterisk_cube.core.routing import AgentView

    mirror = WaitingMirror("a")
    mirror.load([waiting(7, "b", line=1, seconds=3), waiting(8, "b", line=2, seconds=1)])
    agent = AgentView(1, AgentState.READY, lines=frozenset({1, 2}), idle_since=T0)
    (first,) = assignments(mirror.waiting(), [agent], T0 + dt.timedelta(0, 10))
    assert first.call_id == 8  # the longest waiting, on any node
    (by_priority,) = assignments(
        mirror.waiting(), [agent], T0 + dt.timedelta(0, 10), line_priorities={1: 9, 2: 0}
    )
    assert by_priority.call_id == 7  # line priority first


def test_a_waiting_call_carries_its_skill_campaign_and_last_agent():
    """Routing matches a mirrored call on more than its line: a campaign's skill (F-D2)
    and, for a customer calling back, the agent who last talked to them (F-I3)."""
    event = QueueEvent(
        "waiting", 9, "b", 1, CallType.CUSTOMER_CALLBACK, T0,
        skill="norsk|svensk 1", campaign_id=4, last_agent_id=2,
    )  # fmt: skip
    assert decode(encode(event)) == event  # a '|' in a skill name is quoted
    offer = QueueEvent("offered", 9, "a", agent_id=3)
    assert decode(encode(offer)) == offer
    assert decode("waiting|9|1|service|2026-12-06T09:00:00+00:00|b||||x|") is None


def test_routing_keeps_skill_and_affinity_for_mirrored_calls():
    from asterisk_cube.core.agents import AgentState
    from asterisk_cube.core.routing import AgentView

    mirror = WaitingMirror("a")
    mirror.load(
        [
            QueueEvent("waiting", 7, "b", 1, CallType.SERVICE, T0, skill="norsk"),
            QueueEvent(
                "waiting", 8, "b", 1, CallType.CUSTOMER_CALLBACK, T0 + dt.timedelta(0, 1),
                campaign_id=4, last_agent_id=2,
            ),
        ]
    )  # fmt: skip
    now = T0 + dt.timedelta(0, 10)
    unskilled = AgentView(1, AgentState.READY, lines=frozenset({1}), idle_since=T0)
    assert 7 not in {a.call_id for a in assignments(mirror.waiting(), [unskilled], now)}
    skilled = AgentView(
        1, AgentState.READY, lines=frozenset({1}), skills=frozenset({"norsk"}), idle_since=T0
    )
    last = AgentView(2, AgentState.READY, lines=frozenset({1}), idle_since=T0 + dt.timedelta(0, 5))
    got = {a.call_id: a.agent_id for a in assignments(mirror.waiting(), [skilled, last], now)}
    assert got[8] == 2  # the callback goes to the agent who last talked to the customer


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def a_waiting_call(s, node: str) -> int:
    call = m.Call(
        direction=m.Direction.INBOUND,
        kind=m.CallKind.SERVICE,
        state=m.CallState.WAITING,
        node=node,
        queued_at=T0,
    )
    s.add(call)
    s.flush()
    return call.id


def test_one_claim_wins_and_the_other_finds_the_call_taken(sessions):
    with transaction(sessions) as s:
        call_id = a_waiting_call(s, "b")
    with transaction(sessions) as s:
        assert claim(s, call_id, agent_id=None, node="a")  # type: ignore[arg-type]
    with transaction(sessions) as s:
        assert not claim(s, call_id, agent_id=None, node="c")  # type: ignore[arg-type]
        row = s.get(m.Call, call_id)
        assert (row.state, row.offer_node) == (m.CallState.OFFERED, "a")
    with transaction(sessions) as s:
        assert not unclaim(s, call_id, "c")  # not c's claim
        assert unclaim(s, call_id, "a")  # declined: it waits again
    with transaction(sessions) as s:
        assert claim(s, call_id, agent_id=None, node="c")  # type: ignore[arg-type]
    with transaction(sessions) as s:
        assert return_dead_claims(s, "c") == 1  # c died: the call waits for someone else
        assert s.get(m.Call, call_id).state == m.CallState.WAITING


def test_a_node_taken_over_leaves_the_mirror():
    """node_takeover announces ``down``: the dead node's callers cannot be bridged."""
    mirror = WaitingMirror("a")
    mirror.apply(waiting(1, "b"))
    mirror.apply(waiting(2, "c"))
    down = decode(encode(QueueEvent("down", 0, "b")))
    assert down is not None and mirror.apply(down)
    assert [c.call_id for c in mirror.waiting()] == [2]
    assert not mirror.apply(QueueEvent("down", 0, "a"))  # never our own


def test_a_rows_announcement_has_the_campaigns_skill_and_the_contacts_last_agent(sessions):
    from asterisk_cube.acd.crossnode_claims import waiting_elsewhere
    from asterisk_cube.services import provisioning as p

    with transaction(sessions) as s:
        p.add_agent(s, "ann", endpoint="PJSIP/ann")
        camp = p.add_campaign(s, "Winter", mode="power", skill="norsk")
        ann = s.scalar(select(m.Agent.id).where(m.Agent.username == "ann"))
        contact = m.Contact(campaign_id=camp.id, phone="+4790000001", last_agent_id=ann)
        s.add(contact)
        s.flush()
        s.add(
            m.Call(
                direction=m.Direction.INBOUND,
                kind=m.CallKind.CUSTOMER_CALLBACK,
                state=m.CallState.WAITING,
                node="b",
                queued_at=T0,
                campaign_id=camp.id,
                contact_id=contact.id,
            )
        )
    with transaction(sessions) as s:
        (event,) = waiting_elsewhere(s, "a", ["b"])
    assert (event.skill, event.campaign_id, event.last_agent_id) == ("norsk", camp.id, ann)
    assert event.call_type == CallType.CUSTOMER_CALLBACK
