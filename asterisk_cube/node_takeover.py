"""A dead node's work, taken over by a survivor (issue #14, docs/architecture.md
"A dead node's work").

Checked after each lease renewal in the renewal's worker thread (``node_lease``): no
polling of its own and nothing on the call path. A node whose lease expired and that
nobody took over yet is locked (``FOR UPDATE SKIP LOCKED``: one survivor does it, the
others skip it) and, in that one transaction:

* its dialer claims are released with the dialer's own restart recovery
  (``dialer.records.recover``): a dial in flight counts as a failed attempt (retried
  later while attempts remain), a contact claimed but not dialed is free again;
* its agents still logged in are logged out (reason ``node_down``): they log in again
  on a live node (``acd.node_scope`` lets them once the lease expired anyway);
* ``nodes.taken_over_at`` is stamped; the node's next start clears it.

Never before the lease expired: a node that is only slow keeps its work. Its waiting
inbound callers stay in its Asterisk; their rows are left for its own recovery.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd.crossnode_claims import announce, return_dead_claims
from asterisk_cube.core.queue_mirror import DOWN, QueueEvent
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.dialer import records
from asterisk_cube.dialer.campaigns import outbound_campaigns
from asterisk_cube.logs import get_logger
from asterisk_cube.services.nodes import move_agent

log = get_logger(__name__)

#: The state-log reason of an agent logged out because its node died.
NODE_DOWN = "node_down"


def log_out_agents(s: Session, dead: str, now: dt.datetime) -> int:
    """Every agent the dead node left logged in: logged out, with a state-log record."""
    rows = s.scalars(
        select(m.AgentStatus)
        .where(m.AgentStatus.node == dead, m.AgentStatus.state != m.AgentState.LOGGED_OUT)
        .with_for_update()
    ).all()
    for row in rows:
        move_agent(s, row, m.AgentState.LOGGED_OUT, NODE_DOWN, now)
        row.pause_reason = row.pause_requested = None
        row.wrap_up_until = None
    return len(rows)


def take_over_node(s: Session, dead: str, now: dt.datetime) -> dict[str, Any]:
    """In the caller's transaction: release ``dead``'s dialer claims, log its agents out."""
    configs = {c.campaign_id: c for c in outbound_campaigns(s, running_only=False)}
    stats: dict[str, Any] = records.recover(
        s, dead, now, lambda cid: configs[cid].rules if cid in configs else None
    )
    stats["agents_logged_out"] = log_out_agents(s, dead, now)
    stats["offers_returned"] = return_dead_claims(s, dead)  # its claims on others' calls
    announce(s, QueueEvent(DOWN, 0, dead))  # its waiting callers leave the mirrors
    return stats


def take_over_dead(sessions: sessionmaker[Session], me: str, now: dt.datetime) -> list[str]:
    """Take over every dead node nobody took over yet (one transaction each); returns
    their names. Blocking: run it in a worker thread."""
    done: list[str] = []
    while True:
        with transaction(sessions) as s:
            row = s.scalars(
                select(m.Node)
                .where(
                    m.Node.name != me,
                    m.Node.name.not_in(done),
                    m.Node.lease_until < now,
                    m.Node.taken_over_at.is_(None),
                )
                .order_by(m.Node.name)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return done
            stats = take_over_node(s, row.name, now)
            row.taken_over_at = now
            done.append(row.name)
        log.warning("node_taken_over", node=row.name, by=me, **stats)
