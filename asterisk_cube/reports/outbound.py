"""Outbound activity per campaign and period (F-M2, F-D4), and outcomes by category (F-E4)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    PERIOD_UNITS,
    Period,
    Report,
    add_names,
    as_date,
    campaign_ids,
    check_group_by,
    in_period,
    key_columns,
    local_bucket,
    ratio,
    sort_rows,
)
from .enquiries import enquiries

GROUP_KEYS = ("day", "week", "month", "campaign")
MEASURES = [
    "attempts",
    "contacts_dialed",
    "answered",
    "reached",
    "contacts_reached",
    "abandoned",
    "abandon_rate",
    "no_answer",
    "machine",
    "failed",
    "other",
]

_S = m.CallState
REACHED = (_S.CONNECTED, _S.ENDED)


def outbound(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("campaign",),
    *,
    campaigns: Iterable[str] | None = None,
) -> Report:
    """Dial attempts per campaign and/or day, week or month.

    Which attempts: ``contact_attempts`` rows started during ``period``, each counted in
    the local day/week/month of its ``started_at``. ``campaigns`` (names) restricts to
    those campaigns; an unknown name raises :class:`ReportError`.

    Columns, per group (from each attempt's ``result``):

    - ``attempts``: dials; ``contacts_dialed``: distinct contacts dialed.
    - ``reached``: attempts where the contact talked to an agent (``connected``/``ended``);
      ``contacts_reached``: distinct contacts reached.
    - ``abandoned``: answered by a person but no agent within 2 s (F-D4).
    - ``answered``: ``reached + abandoned`` — answered by a person (machines excluded).
    - ``abandon_rate``: ``abandoned / answered`` (the rate the predictive cap limits).
    - ``no_answer``, ``machine``, ``failed``: those results; ``other``: any other result,
      or none yet (attempt in progress).
    """
    keys = check_group_by(group_by, GROUP_KEYS)
    only = campaign_ids(session, campaigns)
    a = m.ContactAttempt
    unit = next((k for k in keys if k in PERIOD_UNITS), None)

    reached = a.result.in_(REACHED)
    inner_cols = [
        a.campaign_id.label("campaign_id"),
        a.contact_id.label("contact_id"),
        case((reached, 1), else_=0).label("reached"),
        case((reached, a.contact_id)).label("reached_contact"),
        case((a.result == _S.ABANDONED, 1), else_=0).label("abandoned"),
        case((a.result == _S.NO_ANSWER, 1), else_=0).label("no_answer"),
        case((a.result == _S.MACHINE, 1), else_=0).label("machine"),
        case((a.result == _S.FAILED, 1), else_=0).label("failed"),
    ]
    if unit:
        inner_cols.append(local_bucket(session, a.started_at, unit, period).label(unit))
    inner = select(*inner_cols).where(in_period(session, a.started_at, period.start, period.end))
    if only:
        inner = inner.where(a.campaign_id.in_(only))
    t = inner.subquery("t")

    group_cols = ([t.c[unit]] if unit else []) + ([t.c.campaign_id] if "campaign" in keys else [])
    stmt = select(
        *group_cols,
        func.count().label("attempts"),
        func.count(t.c.contact_id.distinct()).label("contacts_dialed"),
        func.sum(t.c.reached).label("reached"),
        func.count(t.c.reached_contact.distinct()).label("contacts_reached"),
        func.sum(t.c.abandoned).label("abandoned"),
        func.sum(t.c.no_answer).label("no_answer"),
        func.sum(t.c.machine).label("machine"),
        func.sum(t.c.failed).label("failed"),
    )
    if group_cols:
        stmt = stmt.group_by(*group_cols)

    rows = []
    for r in session.execute(stmt).mappings():
        if not r["attempts"]:
            continue
        n = {k: int(r[k] or 0) for k in r if k not in (unit, "campaign_id")}
        answered = n["reached"] + n["abandoned"]
        row: dict[str, Any] = {}
        if unit:
            row[unit] = as_date(r[unit])
        if "campaign" in keys:
            row["campaign_id"] = r["campaign_id"]
        row.update(
            attempts=n["attempts"],
            contacts_dialed=n["contacts_dialed"],
            answered=answered,
            reached=n["reached"],
            contacts_reached=n["contacts_reached"],
            abandoned=n["abandoned"],
            abandon_rate=ratio(n["abandoned"], answered),
            no_answer=n["no_answer"],
            machine=n["machine"],
            failed=n["failed"],
            other=n["attempts"] - answered - n["no_answer"] - n["machine"] - n["failed"],
        )
        rows.append(row)
    add_names(session, keys, rows)
    sort_rows(keys, rows)
    key_cols = key_columns(keys)
    return Report(
        title="Outbound attempts",
        columns=key_cols + MEASURES,
        rows=rows,
        meta=period.meta(group_by=list(keys)),
    )


def outbound_outcomes(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("campaign", "category", "topic"),
    *,
    campaigns: Iterable[str] | None = None,
) -> Report:
    """Outcomes registered on outbound campaigns' calls, by category/topic (F-E4).

    Same columns as :func:`~asterisk_cube.reports.enquiries.enquiries` (``enquiries``,
    ``selections``, ``share``), restricted to enquiries whose campaign is an outbound one
    (including customer callbacks routed to it); ``campaign`` is always a grouping key, so
    ``share`` is the share of the campaign's enquiries that chose the topic.
    """
    keys = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    if "campaign" not in keys:
        keys = ("campaign", *keys)
    report = enquiries(
        session, period, keys, campaigns=campaigns, campaign_direction=m.Direction.OUTBOUND
    )
    report.title = "Outbound outcomes"
    return report
