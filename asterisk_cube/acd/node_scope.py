"""Which of the distributor's agents belong to this node (issue #14).

Until agents are owned by a node in memory (docs/architecture.md, "Several nodes",
agent ownership), every node loads every agent. Recovery after a start must still
touch only this node's own agents: those whose status row this node wrote last
(``agent_status.node``), or no node wrote yet.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

A = TypeVar("A")


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
