"""Time in each agent state per agent and day (F-D5, F-M2), from the state log.

Each ``agent_state_log`` row is a transition at ``at``; the agent stays in ``to_state``
until its next transition, found with ``LEAD(at) OVER (PARTITION BY agent_id ORDER BY at,
id)`` (SQLite >= 3.25, PostgreSQL). The state an agent was in when the period starts comes
from its last transition before the start (one index lookup per agent). A state still
open is counted up to the period's end or ``now``, whichever is earlier.

Splitting at local midnight: most periods start and end on the same local day and are
summed directly; those that cross midnight are joined with a small table of the period's
local days (UTC bounds computed with ``zoneinfo``) and cut at each day's bounds, so DST
days have 23 or 25 hours. This matches :func:`asterisk_cube.core.agents.time_in_states`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    PERIOD_UNITS,
    Period,
    Report,
    agent_ids,
    as_date,
    check_group_by,
    day_table,
    greatest,
    least,
    local_bucket,
    millis_between,
    seconds,
)

GROUP_KEYS = ("day", "week", "month", "agent")
MEASURES = ["state", "pause_reason", "seconds"]
_ORDER = {state.value: i for i, state in enumerate(m.AgentState)}


def agent_states(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("day", "agent"),
    *,
    agents: Iterable[str] | None = None,
    now: dt.datetime | None = None,
    include_logged_out: bool = False,
    by_reason: bool = True,
) -> Report:
    """Seconds spent in each state, per agent and/or local day, week or month.

    One row per group, state and (for ``paused``, when ``by_reason``) pause reason:
    ``{day|week|month, agent_id, agent, state, pause_reason, seconds}``. Time before an
    agent's first logged transition is unknown and not counted; ``logged_out`` time is left
    out unless ``include_logged_out``. ``agents`` (usernames) restricts the report; an
    unknown name raises :class:`ReportError`. ``now`` (aware, default: the current time)
    caps states that are still open.
    """
    keys = check_group_by(group_by, GROUP_KEYS)
    only = agent_ids(session, agents)
    now = now or dt.datetime.now(dt.UTC)
    cap = min(period.end, now)
    start = period.start
    unit = next((k for k in keys if k in PERIOD_UNITS), None)
    log, ag = m.AgentStateLog, m.Agent

    # where each agent's history starts: its last transition before the period, if any
    before = m.AgentStateLog.__table__.alias("before")
    last_before = (
        select(func.max(before.c.at))
        .where(before.c.agent_id == ag.id, before.c.at < start)
        .scalar_subquery()
    )
    lb = select(ag.id.label("agent_id"), func.coalesce(last_before, start).label("at0"))
    if only:
        lb = lb.where(ag.id.in_(only))
    lb = lb.subquery("lb")

    reason = case((log.to_state == m.AgentState.PAUSED, log.reason)) if by_reason else None
    iv = (
        select(
            log.agent_id.label("agent_id"),
            log.to_state.label("state"),
            (reason if reason is not None else literal(None)).label("reason"),
            log.at.label("s"),
            func.lead(log.at).over(partition_by=log.agent_id, order_by=(log.at, log.id)).label("e"),
        )
        .join(lb, and_(lb.c.agent_id == log.agent_id, log.at >= lb.c.at0))
        .where(log.at < cap)
        .subquery("iv")
    )
    clipped = select(
        iv.c.agent_id,
        iv.c.state,
        iv.c.reason,
        greatest(session, iv.c.s, start).label("s"),
        least(session, func.coalesce(iv.c.e, cap), cap).label("e"),
    )
    if not include_logged_out:
        clipped = clipped.where(iv.c.state != m.AgentState.LOGGED_OUT)
    c = clipped.subquery("c")
    ms = millis_between(session, c.c.e, c.c.s)

    if unit is None:
        pieces = select(c.c.agent_id, c.c.state, c.c.reason, ms.label("ms")).where(c.c.e > c.c.s)
    else:
        day_s = local_bucket(session, c.c.s, "day", period)
        day_e = local_bucket(session, c.c.e, "day", period)
        same_day = select(
            c.c.agent_id,
            c.c.state,
            c.c.reason,
            local_bucket(session, c.c.s, unit, period).label("bucket"),
            ms.label("ms"),
        ).where(c.c.e > c.c.s, day_s == day_e)
        days = day_table(period)
        crossing = (
            select(
                c.c.agent_id,
                c.c.state,
                c.c.reason,
                days.c[unit].label("bucket"),
                millis_between(
                    session, least(session, c.c.e, days.c.t1), greatest(session, c.c.s, days.c.t0)
                ).label("ms"),
            )
            .select_from(c)
            .join(days, and_(days.c.t0 < c.c.e, days.c.t1 > c.c.s))
            .where(c.c.e > c.c.s, day_s != day_e)
        )
        pieces = union_all(same_day, crossing)
    u = pieces.subquery("u")

    out, group_cols, key_cols = [], [], []
    if unit:
        out.append(u.c.bucket.label(unit))
        group_cols.append(u.c.bucket)
        key_cols.append(unit)
    if "agent" in keys:
        out += [u.c.agent_id, ag.username.label("agent")]
        group_cols += [u.c.agent_id, ag.username]
        key_cols += ["agent_id", "agent"]
    stmt = select(*out, u.c.state, u.c.reason, func.sum(u.c.ms).label("ms")).select_from(u)
    if "agent" in keys:
        stmt = stmt.outerjoin(ag, ag.id == u.c.agent_id)
    stmt = stmt.group_by(*group_cols, u.c.state, u.c.reason)

    rows = []
    for r in session.execute(stmt).mappings():
        if not r["ms"]:
            continue
        row = {k: r[k] for k in key_cols}
        if unit:
            row[unit] = as_date(row[unit])
        state = r["state"]
        row.update(
            state=state.value if hasattr(state, "value") else state,
            pause_reason=r["reason"],
            seconds=seconds(r["ms"]),
        )
        rows.append(row)
    rows.sort(
        key=lambda r: (
            r.get(unit) or dt.date.min,
            r.get("agent") or "",
            r.get("agent_id") or 0,
            _ORDER.get(r["state"], 99),
            r["pause_reason"] or "",
        )
    )
    return Report(
        title="Agent state times",
        columns=key_cols + MEASURES,
        rows=rows,
        meta={
            "from": period.first,
            "to": period.last,
            "zone": period.zone,
            "group_by": list(keys),
            "until": cap,
        },
    )
