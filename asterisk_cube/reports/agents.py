"""Time in each agent state per agent and day (F-D5, F-M2), from the state log.

Each ``agent_state_log`` row is a transition at ``at``; the agent stays in ``to_state``
until its next transition, found with ``LEAD(at) OVER (PARTITION BY agent_id ORDER BY
at, ...)`` (SQLite >= 3.25, PostgreSQL). A state still open is counted up to the period's
end or ``now``, whichever is earlier.

Splitting at local midnight without a second pass: for every agent and every local
midnight of the period (UTC instants from ``zoneinfo``, so DST days have 23 or 25 hours)
the query adds a *mark* that restates the agent's state at that instant — its latest
transition before it, one index seek per agent and day. The transitions and the marks go
through ``LEAD`` together, so no period crosses midnight and each is summed into the local
day (week, month) where it starts. The first mark is also the state the agent was in
when the report period began. This matches
:func:`asterisk_cube.core.agents.time_in_states`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, func, literal, null, select, true, union_all
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    PERIOD_UNITS,
    Period,
    Report,
    add_names,
    agent_ids,
    as_date,
    check_group_by,
    day_table,
    in_period,
    key_columns,
    local_bucket,
    millis_between,
    seconds,
    sort_rows,
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

    # One mark per agent and local midnight of the period: the agent's latest transition
    # before that midnight (one index seek each) restates its state there, so that the
    # periods LEAD() finds never cross midnight; the first mark also gives the state the
    # agent was in when the period started.
    days = day_table(period)
    prior = m.AgentStateLog.__table__.alias("prior")
    latest = (
        select(prior.c.id)
        .where(prior.c.agent_id == ag.id, prior.c.at < days.c.t0)
        .order_by(prior.c.agent_id.desc(), prior.c.at.desc(), prior.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    marks = (
        select(ag.id.label("agent_id"), days.c.t0.label("at"), latest.label("log_id"))
        .select_from(ag)
        .join(days, true())
        .where(days.c.t0 < cap)
    )
    if only:
        marks = marks.where(ag.id.in_(only))
    marks_q = marks.subquery("marks")
    marked = m.AgentStateLog.__table__.alias("marked")

    def reason_of(table):  # the pause reason, only for paused (less to carry through LEAD)
        if not by_reason:
            return null()
        return case((table.c.to_state == m.AgentState.PAUSED, table.c.reason))

    restated = select(
        marks_q.c.agent_id,
        marks_q.c.at,
        literal(0).label("kind"),
        literal(0).label("id"),
        marked.c.to_state.label("state"),
        reason_of(marked).label("reason"),
    ).join(marked, marked.c.id == marks_q.c.log_id)
    logged = select(
        log.agent_id,
        log.at,
        literal(1).label("kind"),
        log.id,
        log.to_state.label("state"),
        reason_of(log.__table__).label("reason"),
    ).where(in_period(session, log.at, start, cap))
    if only:
        logged = logged.where(log.agent_id.in_(only))
    both = union_all(restated, logged).subquery("both")

    order = (both.c.at, both.c.kind, both.c.id)
    iv = select(
        both.c.agent_id,
        both.c.state,
        both.c.reason,
        both.c.at.label("s"),
        func.lead(both.c.at).over(partition_by=both.c.agent_id, order_by=order).label("e"),
    ).subquery("iv")
    end = func.coalesce(iv.c.e, cap)
    pieces = select(
        iv.c.agent_id,
        iv.c.state,
        iv.c.reason,
        millis_between(session, end, iv.c.s).label("ms"),
        (local_bucket(session, iv.c.s, unit, period) if unit else literal(None)).label("bucket"),
    ).where(end > iv.c.s)
    if not include_logged_out:
        pieces = pieces.where(iv.c.state != m.AgentState.LOGGED_OUT)
    u = pieces.subquery("u")

    group_cols = ([u.c.bucket] if unit else []) + ([u.c.agent_id] if "agent" in keys else [])
    stmt = select(*group_cols, u.c.state, u.c.reason, func.sum(u.c.ms).label("ms")).group_by(
        *group_cols, u.c.state, u.c.reason
    )

    rows = []
    for r in session.execute(stmt).mappings():
        if not r["ms"]:
            continue
        row: dict[str, Any] = {}
        if unit:
            row[unit] = as_date(r["bucket"])
        if "agent" in keys:
            row["agent_id"] = r["agent_id"]
        state = r["state"]
        row.update(
            state=state.value if hasattr(state, "value") else state,
            pause_reason=r["reason"],
            seconds=seconds(r["ms"]),
        )
        rows.append(row)
    add_names(session, keys, rows)
    rows.sort(key=lambda r: (_ORDER.get(r["state"], 99), r["pause_reason"] or ""))
    sort_rows(keys, rows)  # stable: states stay in order within each group
    key_cols = key_columns(keys)
    return Report(
        title="Agent state times",
        columns=key_cols + MEASURES,
        rows=rows,
        meta=period.meta(group_by=list(keys), until=cap),
    )
