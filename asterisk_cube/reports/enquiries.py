"""Enquiry statistics (F-E3): counts per category/topic, top topics, over time, per agent,
per line and per campaign."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m

from .common import (
    PERIOD_UNITS,
    Period,
    Report,
    ReportError,
    add_names,
    agent_ids,
    as_date,
    campaign_ids,
    check_group_by,
    in_period,
    key_columns,
    line_ids,
    local_bucket,
    ratio,
    sort_rows,
)

GROUP_KEYS = ("day", "week", "month", "category", "topic", "agent", "line", "campaign")
MEASURES = ["enquiries", "selections", "share"]
_TOPICAL = ("category", "topic")


def enquiries(
    session: Session,
    period: Period,
    group_by: Sequence[str] | str = ("category", "topic"),
    *,
    lines: Iterable[str] | None = None,
    campaigns: Iterable[str] | None = None,
    agents: Iterable[str] | None = None,
    top: int | None = None,
    campaign_direction: str | None = None,
) -> Report:
    """Enquiry registrations grouped by any of ``category``, ``topic``, ``agent``, ``line``,
    ``campaign`` and at most one of ``day``/``week``/``month``.

    Which enquiries: those created during ``period`` (counted in the local day/week/month
    of ``created_at``), optionally only on the given lines (DIDs), campaigns (names) or
    agents (usernames); ``campaign_direction`` (``"outbound"``/``"inbound"``) keeps only
    enquiries on calls of a campaign with that direction.
    Agent, line and campaign are the ones copied onto the enquiry when it was registered.

    Columns, per group:

    - ``enquiries``: distinct enquiries. With ``topic``/``category`` grouping, an enquiry
      is counted under each topic (category) it picked, once per category even when a
      multi-choice category has several picks; enquiries without any pick appear under an
      empty topic/category.
    - ``selections``: topic picks (an enquiry with three picks counts three).
    - ``share``: ``enquiries`` divided by the enquiries of its *base group*: the same row
      without its category/topic keys when grouped by category or topic (e.g. the share of
      a campaign's enquiries that chose "Sale"), otherwise the same period (or the whole
      report).

    ``top``: keep the ``top`` groups with most enquiries (``group_by=("topic",)`` gives the
    most common enquiry types), ordered by ``enquiries`` descending.
    """
    keys = check_group_by(group_by, GROUP_KEYS)
    if top is not None and top < 1:
        raise ReportError("--top must be 1 or more")
    only_lines = line_ids(session, lines)
    only_campaigns = campaign_ids(session, campaigns)
    only_agents = agent_ids(session, agents)
    unit = next((k for k in keys if k in PERIOD_UNITS), None)

    e, sel, tp = m.Enquiry, m.EnquirySelection, m.EnquiryTopic
    topical = any(k in _TOPICAL for k in keys)

    def base(with_topics: bool):
        cols: list[ColumnElement[Any]] = [
            e.id.label("enquiry_id"),
            e.agent_id.label("agent_id"),
            e.line_id.label("line_id"),
            e.campaign_id.label("campaign_id"),
        ]
        if unit:
            cols.append(local_bucket(session, e.created_at, unit, period).label(unit))
        if with_topics:
            cols += [
                sel.topic_id.label("topic_id"),
                tp.category_id.label("category_id"),
            ]
        else:  # the number of picks, by the selections' primary key
            picks = select(func.count()).where(sel.enquiry_id == e.id).scalar_subquery()
            cols.append(picks.label("picks"))
        q = select(*cols).select_from(e)
        if with_topics:
            q = q.outerjoin(sel, sel.enquiry_id == e.id).outerjoin(tp, tp.id == sel.topic_id)
        q = q.where(in_period(session, e.created_at, period.start, period.end))
        if only_lines:
            q = q.where(e.line_id.in_(only_lines))
        if only_campaigns:
            q = q.where(e.campaign_id.in_(only_campaigns))
        if only_agents:
            q = q.where(e.agent_id.in_(only_agents))
        if campaign_direction:
            q = q.where(
                e.campaign_id.in_(
                    select(m.Campaign.id).where(m.Campaign.direction == campaign_direction)
                )
            )
        return q.subquery("t")

    if "topic" in keys and "category" not in keys:
        # a topic's name is only unique within its category: show the category too
        keys = tuple(x for k in keys for x in (("category", "topic") if k == "topic" else (k,)))
    t = base(topical)
    picks: ColumnElement[Any]
    if "topic" in keys:
        # one row per enquiry and picked topic (or none): rows are distinct enquiries
        measure = func.count().label("enquiries")
        picks = func.count(t.c.topic_id)
    elif topical:
        # per category an enquiry may have several picks (multi-choice)
        measure = func.count(t.c.enquiry_id.distinct()).label("enquiries")
        picks = func.count(t.c.topic_id)
    else:
        measure = func.count().label("enquiries")
        picks = func.sum(t.c.picks)
    group_cols = [t.c[k] if k in PERIOD_UNITS else t.c[f"{k}_id"] for k in keys]
    stmt = select(*group_cols, measure, picks.label("selections"))
    if group_cols:
        stmt = stmt.group_by(*group_cols)
    if top:
        stmt = stmt.order_by(measure.desc(), *group_cols).limit(top)
    rows = []
    for r in session.execute(stmt).mappings():
        if not r["enquiries"]:
            continue
        row: dict[str, Any] = {}
        for k in keys:
            if k in PERIOD_UNITS:
                row[k] = as_date(r[k])
            else:
                row[f"{k}_id"] = r[f"{k}_id"]
        row["enquiries"] = int(r["enquiries"])
        row["selections"] = int(r["selections"] or 0)
        rows.append(row)
    add_names(session, keys, rows)
    if top:
        rows.sort(key=lambda r: -r["enquiries"])  # stable: ties keep the SQL order
    else:
        sort_rows(keys, rows)
    key_cols = key_columns(keys)

    # the share's denominators: distinct enquiries per base group, one more small aggregate
    base_keys = [k for k in keys if k not in _TOPICAL] if topical else ([unit] if unit else [])
    b = base(False)
    base_cols = [b.c[k] if k in PERIOD_UNITS else b.c[f"{k}_id"] for k in base_keys]
    totals_stmt = select(*base_cols, func.count(b.c.enquiry_id)).select_from(b)
    if base_cols:
        totals_stmt = totals_stmt.group_by(*base_cols)
    totals: dict[tuple[Any, ...], int] = {}
    for counted in session.execute(totals_stmt):
        key = tuple(
            as_date(v) if k in PERIOD_UNITS else v
            for k, v in zip(base_keys, counted[:-1], strict=True)
        )
        totals[key] = counted[-1]
    for row in rows:
        key = tuple(row[k] if k in PERIOD_UNITS else row[f"{k}_id"] for k in base_keys)
        row["share"] = ratio(row["enquiries"], totals.get(key))
    return Report(
        title="Enquiries",
        columns=key_cols + MEASURES,
        rows=rows,
        meta=period.meta(group_by=list(keys), top=top),
    )
