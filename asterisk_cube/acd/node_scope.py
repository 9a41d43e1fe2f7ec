"""Which agents belong to this node (issue #14, docs/architecture.md "Several nodes").

An agent belongs, while logged in, to the node where its desk logged in
(``agent_status.node``). Login claims it with one conditional UPDATE
(:func:`claim_agent`); a node keeps in memory only agents that are logged out or its
own (:func:`foreign_agent_ids`), so it offers to and dials for its own agents only.
Recovery after a start touches only this node's agents (:func:`own_agents`): those
whose status row this node wrote last, or no node wrote yet.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from asterisk_cube.acd import contract as c
from asterisk_cube.db import models as m

A = TypeVar("A")


class OwnedByNode(c.Refused):
    """The agent is logged in on another live node: log out there first (HTTP 409)."""

    def __init__(self, node: str) -> None:
        super().__init__(c.OTHER_NODE, f"logged in on node {node!r}: log out there first")
        self.node = node


def own_agent_ids(s: Session, node: str) -> set[int]:
    return set(
        s.scalars(
            select(m.AgentStatus.agent_id).where(
                (m.AgentStatus.node == node) | m.AgentStatus.node.is_(None)
            )
        )
    )


def own_agents(s: Session, node: str, agents: dict[int, A]) -> list[A]:
    """The agents of ``agents`` (by id) that belong to ``node``, in their order."""
    own = own_agent_ids(s, node)
    return [agent for agent_id, agent in agents.items() if agent_id in own]


def _dead_nodes(now: dt.datetime):
    return select(m.Node.name).where(m.Node.lease_until < now).scalar_subquery()


def _claimable(node: str, now: dt.datetime):
    """Rows this node may take: its own, nobody's, logged out, or a dead node's."""
    st = m.AgentStatus
    return or_(
        st.node == node,
        st.node.is_(None),
        st.state == m.AgentState.LOGGED_OUT,
        st.node.in_(_dead_nodes(now)),
    )


def foreign_agent_ids(s: Session, node: str, now: dt.datetime) -> set[int]:
    """Agents logged in on another node whose lease has not expired: not ours to load."""
    st = m.AgentStatus
    return set(s.scalars(select(st.agent_id).where(~_claimable(node, now))))


def owner_elsewhere(s: Session, agent_id: int, node: str, now: dt.datetime) -> str | None:
    """The live node other than ``node`` the agent is logged in on, if any (one row)."""
    st = m.AgentStatus
    return s.scalar(select(st.node).where(st.agent_id == agent_id, ~_claimable(node, now)))


def claim_agent(
    s: Session, agent_id: int, node: str, state: m.AgentState, now: dt.datetime
) -> None:
    """At login: make ``node`` the agent's owner, in one conditional UPDATE that also
    writes the new state (so a second node's claim right after sees it logged in, even
    before the write-behind journal wrote the rest). :class:`OwnedByNode` when another
    live node owns the agent; an agent without a status row yet is simply ours."""
    st = m.AgentStatus
    done = s.execute(
        update(st)
        .where(st.agent_id == agent_id, _claimable(node, now))
        .values(node=node, state=state)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount:  # type: ignore[attr-defined]
        return
    owner = s.scalar(select(st.node).where(st.agent_id == agent_id))
    if owner is not None:
        raise OwnedByNode(owner)
