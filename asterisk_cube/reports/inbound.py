"""Inbound activity per line and period (F-M2, F-I7).

One SQL statement: an inner select derives each queued call's grouping keys and wait,
the outer one aggregates with ``COUNT``/``SUM(CASE ...)``/``AVG``/``MAX``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    PERIOD_UNITS,
    Period,
    Report,
    ReportError,
    add_names,
    as_date,
    check_group_by,
    in_period,
    key_columns,
    line_ids,
    local_bucket,
    millis_between,
    ratio,
    seconds,
    sort_rows,
)

GROUP_KEYS = ("day", "week", "month", "line")
MEASURES = [
    "offered",
    "answered",
    "abandoned",
    "other",
    "answered_within_sl",
    "service_level",
    "avg_wait_answered",
    "max_wait_answered",
    "avg_wait_abandoned",
    "max_wait_abandoned",
    "missed",
    "missed_processed",
    "missed_processed_share",
]


def inbound(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("line",),
    *,
    service_level_seconds: float = 20,
    lines: Iterable[str] | None = None,
) -> Report:
    """Inbound calls per line and/or day, week or month.

    Which calls: inbound calls that entered a line's queue (``queued_at`` set) during
    ``period``; each is counted in the local day/week/month of its ``queued_at``.
    ``lines`` (DIDs) restricts to those lines; an unknown DID raises :class:`ReportError`.
    ``group_by``: any of ``line`` plus at most one of ``day``/``week``/``month``
    (an empty tuple gives one total row).

    Columns, per group:

    - ``offered``: calls queued.
    - ``answered``: calls connected to an agent (``answered_at`` set).
    - ``abandoned``: callers who hung up while waiting (state ``missed``, F-I7).
    - ``other``: ``offered - answered - abandoned`` (still waiting, or ended otherwise).
    - ``answered_within_sl``: answered calls whose wait ``answered_at - queued_at`` was at
      most ``service_level_seconds`` (measured to the millisecond; exactly N s counts).
    - ``service_level``: ``answered_within_sl / offered``, a fraction. Every queued call is
      in the denominator, abandoned ones included, however short their wait.
    - ``avg_wait_answered`` / ``max_wait_answered``: seconds from ``queued_at`` to
      ``answered_at`` over answered calls.
    - ``avg_wait_abandoned`` / ``max_wait_abandoned``: seconds from ``queued_at`` to
      ``ended_at`` over abandoned calls (those with ``ended_at``).
    - ``missed``: missed-call records of these calls; ``missed_processed``: those marked
      processed (as of now, not as of the period's end);
      ``missed_processed_share = missed_processed / missed``.
    """
    keys = check_group_by(group_by, GROUP_KEYS)
    if service_level_seconds < 0:
        raise ReportError("the service level threshold must be 0 seconds or more")
    only = line_ids(session, lines)

    c, mc = m.Call, m.MissedCall
    answered = c.answered_at.is_not(None)
    abandoned = c.state == m.CallState.MISSED
    inner_cols = [
        c.line_id.label("line_id"),
        case((answered, 1), else_=0).label("ans"),
        case((abandoned, 1), else_=0).label("abd"),
        case((answered, millis_between(session, c.answered_at, c.queued_at))).label("wait_ans"),
        case(
            (
                and_(abandoned, c.ended_at.is_not(None)),
                millis_between(session, c.ended_at, c.queued_at),
            )
        ).label("wait_abd"),
        case((mc.id.is_not(None), 1), else_=0).label("missed"),
        case((mc.processed_at.is_not(None), 1), else_=0).label("processed"),
    ]
    unit = next((k for k in keys if k in PERIOD_UNITS), None)
    if unit:
        inner_cols.append(local_bucket(session, c.queued_at, unit, period).label(unit))
    inner = (
        select(*inner_cols)
        .select_from(c)
        .outerjoin(mc, mc.call_id == c.id)
        .where(
            c.direction == m.Direction.INBOUND,
            in_period(session, c.queued_at, period.start, period.end),
        )
    )
    if only:
        inner = inner.where(c.line_id.in_(only))
    t = inner.subquery("t")

    sl_ms = round(service_level_seconds * 1000)
    group_cols = ([t.c[unit]] if unit else []) + ([t.c.line_id] if "line" in keys else [])
    stmt = select(
        *group_cols,
        func.count().label("offered"),
        func.sum(t.c.ans).label("answered"),
        func.sum(t.c.abd).label("abandoned"),
        func.sum(case((t.c.wait_ans <= literal(sl_ms), 1), else_=0)).label("within"),
        func.avg(t.c.wait_ans).label("avg_ans"),
        func.max(t.c.wait_ans).label("max_ans"),
        func.avg(t.c.wait_abd).label("avg_abd"),
        func.max(t.c.wait_abd).label("max_abd"),
        func.sum(t.c.missed).label("missed"),
        func.sum(t.c.processed).label("processed"),
    )
    if group_cols:
        stmt = stmt.group_by(*group_cols)

    rows = []
    for r in session.execute(stmt).mappings():
        if not r["offered"]:
            continue  # the aggregate over no rows at all
        offered = int(r["offered"])
        ans, abd = int(r["answered"] or 0), int(r["abandoned"] or 0)
        missed, processed = int(r["missed"] or 0), int(r["processed"] or 0)
        row: dict[str, Any] = {}
        if unit:
            row[unit] = as_date(r[unit])
        if "line" in keys:
            row["line_id"] = r["line_id"]
        row.update(
            offered=offered,
            answered=ans,
            abandoned=abd,
            other=offered - ans - abd,
            answered_within_sl=int(r["within"] or 0),
            service_level=ratio(r["within"], offered),
            avg_wait_answered=seconds(r["avg_ans"]),
            max_wait_answered=seconds(r["max_ans"]),
            avg_wait_abandoned=seconds(r["avg_abd"]),
            max_wait_abandoned=seconds(r["max_abd"]),
            missed=missed,
            missed_processed=processed,
            missed_processed_share=ratio(processed, missed),
        )
        rows.append(row)
    add_names(session, keys, rows)
    sort_rows(keys, rows)
    key_cols = key_columns(keys)
    return Report(
        title="Inbound calls",
        columns=key_cols + MEASURES,
        rows=rows,
        meta=period.meta(group_by=list(keys), service_level_seconds=service_level_seconds),
    )
