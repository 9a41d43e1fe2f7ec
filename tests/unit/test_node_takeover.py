"""A dead node's work taken over by a survivor (issue #14 item 2), on SQLite: never
before its lease expired, once, by one survivor; its dialer claims released and its
agents logged out; its next start clears the mark."""

import datetime as dt

import pytest
from dbkit import migrated_sqlite
from sqlalchemy import select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.node_takeover import NODE_DOWN, take_over_dead
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import NodeLease

T0 = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def world(tmp_path):
    with migrated_sqlite(tmp_path) as sessions:
        for name in ("a", "b"):
            NodeLease(sessions, name, pid=1, clock=lambda: T0, alive=lambda pid: False).take()
        with transaction(sessions) as s:
            camp = p.add_campaign(s, "Winter", mode="power")
            for i, node in enumerate(("b", "b", "a")):
                s.add(
                    m.Contact(
                        campaign_id=camp.id, phone=f"+4791000{i:03d}",
                        status=m.ContactStatus.DIALING, claimed_by=node,
                    )
                )  # fmt: skip
            for name, node in (("ann", "b"), ("bob", "a")):
                agent = p.add_agent(s, name, endpoint=f"PJSIP/{name}")
                s.flush()
                status = s.get(m.AgentStatus, agent.id)
                status.state, status.node = m.AgentState.READY, node
        yield sessions


def state(sessions):
    with transaction(sessions) as s:
        claims = sorted((c.claimed_by or "-", c.status.value) for c in s.scalars(select(m.Contact)))
        agents = {
            a.username: (a.status.state.value, a.status.node) for a in s.scalars(select(m.Agent))
        }
        logs = [(r.to_state.value, r.reason) for r in s.scalars(select(m.AgentStateLog))]
        taken = s.get(m.Node, "b").taken_over_at
        return claims, agents, logs, taken


def test_a_dead_nodes_work_is_taken_over_after_its_lease_expired_once(world):
    sessions = world
    before = state(sessions)
    lease_end = T0 + dt.timedelta(seconds=15)
    assert take_over_dead(sessions, "a", lease_end) == []  # not expired yet: b keeps it
    assert state(sessions) == before
    later = lease_end + dt.timedelta(seconds=1)
    assert take_over_dead(sessions, "a", later) == ["b"]
    claims, agents, logs, taken = state(sessions)
    assert ("b", "dialing") not in claims and ("a", "dialing") in claims  # a's claim stays
    assert agents == {"ann": ("logged_out", "b"), "bob": ("ready", "a")}
    assert logs == [("logged_out", NODE_DOWN)]
    assert taken == later
    assert take_over_dead(sessions, "a", later + dt.timedelta(seconds=5)) == []  # once
    # b comes back: its lease is fresh and the mark cleared
    NodeLease(sessions, "b", pid=2, clock=lambda: later, alive=lambda pid: False).take()
    assert state(sessions)[3] is None


def test_the_lease_length_is_a_setting_with_bounds(tmp_path):
    from asterisk_cube.config import ConfigError, load_settings

    env = {"ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    assert load_settings(env=env).node.lease_seconds == 15
    short = {**env, "ASTERISK_CUBE_NODE_LEASE_SECONDS": "3"}
    assert load_settings(env=short).node.lease_seconds == 3
    with pytest.raises(ConfigError, match=r"node.lease_seconds must be 3-300, got 1"):
        load_settings(env={**env, "ASTERISK_CUBE_NODE_LEASE_SECONDS": "1"})


def test_a_dead_nodes_offers_on_other_nodes_calls_wait_again(world):
    """One queue across nodes: b claimed a's caller for its agent, then died; a's caller
    waits again (offer_node cleared), b's own offered call is left to b's recovery."""
    sessions = world
    with transaction(sessions) as s:
        claimed, own = (
            m.Call(
                direction=m.Direction.INBOUND, kind=m.CallKind.SERVICE,
                state=m.CallState.OFFERED, node=node, offer_node="b", queued_at=T0,
            )
            for node in ("a", "b")
        )  # fmt: skip
        s.add_all([claimed, own])
        s.flush()
        ids = claimed.id, own.id
    assert take_over_dead(sessions, "a", T0 + dt.timedelta(seconds=16)) == ["b"]
    with transaction(sessions) as s:
        rows = [s.get(m.Call, i) for i in ids]
        assert [(r.state, r.offer_node) for r in rows] == [
            (m.CallState.WAITING, None),
            (m.CallState.OFFERED, "b"),
        ]
