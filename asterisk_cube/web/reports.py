"""Reports in the browser (F-M2, F-E3): tables, charts and CSV export.

Routes (supervisors and admins only; agents get 403, anonymous users 401 or the login
page)::

    GET /reports              HTML page: a form, the report as a table, a chart (Chart.js)
    GET /reports/export.csv   the same report as CSV (an attachment)
    GET /api/reports          the same report as JSON ({title, columns, rows, meta, chart})
    GET /reports/static/...   reports.js, vendor/chart.umd.js (Chart.js, served from the package)

Query parameters (all optional; the same for all three)::

    report   inbound | outbound | outcomes | agents | enquiries | recordings (default inbound)
    from, to YYYY-MM-DD, whole local days (default: the 7 days up to today)
    zone     IANA time zone (default: the machine's)
    group    a grouping key of the report; repeat to combine (default: the CLI's default)
    line, campaign, agent   filters (DID / name / username; repeat or comma-separate)
    sl       service level seconds (inbound; default 20)

Bad parameters give 400 with one line saying which (never a traceback). The figures are
those of :mod:`asterisk_cube.reports`, unformatted, so the table, chart, CSV and JSON
agree with the CLI's ``asterisk-cube report ... --format csv``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from asterisk_cube.web.pages import SECURITY_HEADERS, STATIC, make_templates, supervisor_page_user

from .. import reports as R
from ..core.text import control_problem
from ..logs import get_logger
from ..reports.common import (
    PERIOD_UNITS,
    Period,
    Report,
    ReportError,
    check_zone,
    parse_day,
    system_zone,
)
from . import i18n
from .auth import User, refusal, require_role
from .i18n import N_
from .i18n import gettext as _
from .nav import nav_context

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = get_logger(__name__)

MAX_FILTER_VALUES = 50


@dataclass(frozen=True)
class Kind:
    """One report the page offers: its grouping keys, default grouping, filters, chart."""

    label: str
    keys: tuple[str, ...]
    default: tuple[str, ...]
    filters: tuple[str, ...]
    chart: tuple[str, ...]  # numeric columns drawn as datasets
    labels: tuple[str, ...] = ()  # non-key columns that name a row (agent states)


KINDS: dict[str, Kind] = {
    "inbound": Kind(
        N_("Inbound calls"),
        ("day", "week", "month", "line"),
        ("line",),
        ("line",),
        ("offered", "answered", "abandoned"),
    ),
    "outbound": Kind(
        N_("Outbound attempts"),
        ("day", "week", "month", "campaign"),
        ("campaign",),
        ("campaign",),
        ("attempts", "reached", "abandoned"),
    ),
    "outcomes": Kind(
        N_("Outbound outcomes"),
        ("day", "week", "month", "campaign", "category", "topic"),
        ("campaign", "category", "topic"),
        ("campaign",),
        ("enquiries",),
    ),
    "agents": Kind(
        N_("Agent state times"),
        ("day", "week", "month", "agent"),
        ("day", "agent"),
        ("agent",),
        ("seconds",),
        labels=("state", "pause_reason"),
    ),
    "enquiries": Kind(
        N_("Enquiries"),
        ("day", "week", "month", "category", "topic", "agent", "line", "campaign"),
        ("category", "topic"),
        ("line", "campaign", "agent"),
        ("enquiries",),
    ),
    "recordings": Kind(
        N_("Recorded calls"),
        ("call",),
        ("call",),
        ("line", "campaign", "agent"),
        ("duration_seconds",),
    ),
}

KEY_LABELS = {
    "day": N_("Day"),
    "week": N_("Week"),
    "month": N_("Month"),
    "line": N_("Line"),
    "campaign": N_("Campaign"),
    "agent": N_("Agent"),
    "category": N_("Category"),
    "topic": N_("Topic"),
    "call": N_("Call"),
}
FILTER_HINTS = {
    "line": N_("DIDs, comma-separated"),
    "campaign": N_("Campaign names, comma-separated"),
    "agent": N_("Usernames, comma-separated"),
}
# name columns that label a row for each grouping key (ids are left out of labels)
LABEL_COLUMNS = {
    "line": ("line_name", "line"),
    "campaign": ("campaign",),
    "agent": ("agent",),
    "category": ("category",),
    "topic": ("topic",),
}


@dataclass
class Query:
    kind: str
    first: dt.date
    last: dt.date
    zone: str
    group: tuple[str, ...]
    filters: dict[str, list[str]]
    sl: float

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]


def default_zone() -> str:
    return system_zone()


def parse_query(request: Request) -> Query:
    """The report request from the query string; :class:`ReportError` names what is wrong."""
    qp = request.query_params
    for key, value in qp.multi_items():
        problem = control_problem(key + value)
        if problem:
            raise ReportError(f"{key}: {problem}")
    kind = (qp.get("report") or "inbound").strip()
    if kind not in KINDS:
        raise ReportError(f"unknown report {kind!r}; choose from {', '.join(KINDS)}")
    spec = KINDS[kind]
    zone = check_zone((qp.get("zone") or "").strip() or default_zone())
    today = dt.datetime.now(ZoneInfo(zone)).date()
    last = parse_day(qp["to"], "to") if qp.get("to") else today
    first = parse_day(qp["from"], "from") if qp.get("from") else last - dt.timedelta(days=6)
    group = tuple(g.strip() for g in qp.getlist("group") if g.strip())
    for key in group:
        if key not in spec.keys:
            raise ReportError(f"cannot group {kind} by {key!r}; choose from {', '.join(spec.keys)}")
    filters: dict[str, list[str]] = {}
    for name in ("line", "campaign", "agent"):
        values = [v.strip() for raw in qp.getlist(name) for v in raw.split(",") if v.strip()]
        if not values:
            continue
        if name not in spec.filters:
            raise ReportError(f"the {kind} report has no {name} filter")
        if len(values) > MAX_FILTER_VALUES:
            raise ReportError(f"at most {MAX_FILTER_VALUES} {name} values")
        filters[name] = values
    sl = 20.0
    if qp.get("sl"):
        try:
            sl = float(qp["sl"])
        except ValueError:
            raise ReportError(f"sl must be a number of seconds; got {qp['sl']!r}") from None
        if not math.isfinite(sl) or sl < 0 or sl > 86400:
            raise ReportError("sl must be between 0 and 86400 seconds")
    return Query(kind, first, last, zone, group or spec.default, filters, sl)


def run_report(session: Session, q: Query) -> Report:
    period = Period(q.first, q.last, q.zone)
    f = q.filters
    if q.kind == "inbound":
        return R.inbound(session, period, q.group, service_level_seconds=q.sl, lines=f.get("line"))
    if q.kind == "outbound":
        return R.outbound(session, period, q.group, campaigns=f.get("campaign"))
    if q.kind == "outcomes":
        return R.outbound_outcomes(session, period, q.group, campaigns=f.get("campaign"))
    if q.kind == "agents":
        return R.agent_states(session, period, q.group, agents=f.get("agent"))
    if q.kind == "recordings":
        return R.recordings(
            session,
            period,
            q.group,
            lines=f.get("line"),
            campaigns=f.get("campaign"),
            agents=f.get("agent"),
        )
    return R.enquiries(
        session,
        period,
        q.group,
        lines=f.get("line"),
        campaigns=f.get("campaign"),
        agents=f.get("agent"),
    )


def _cell(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def shown_columns(report: Report) -> list[str]:
    """The table's columns: the report's, without the ``*_id`` columns (CSV keeps them)."""
    return [c for c in report.columns if not c.endswith("_id")]


def row_label(row: dict[str, Any], keys: tuple[str, ...], extra: tuple[str, ...]) -> str:
    parts: list[str] = []
    for key in keys:
        if key in PERIOD_UNITS:
            parts.append(str(_cell(row.get(key))))
            continue
        cols = LABEL_COLUMNS.get(key, (key,))
        name = next((row.get(c) for c in cols if row.get(c) not in (None, "")), None)
        parts.append("—" if name is None else str(name))
    for col in extra:
        if row.get(col) not in (None, ""):
            parts.append(str(row[col]))
    return " · ".join(parts) or "—"


def chart_data(report: Report, q: Query) -> dict[str, Any]:
    """What the chart draws: one label per row, one dataset per measure (the row's figures)."""
    keys = _report_keys(report, q)
    spec = q.spec
    only_time = all(k in PERIOD_UNITS for k in keys) and not spec.labels
    return {
        "type": "line" if only_time and len(report.rows) > 1 else "bar",
        "labels": [row_label(r, keys, spec.labels) for r in report.rows],
        "datasets": [
            {"key": col, "label": col, "data": [r.get(col) for r in report.rows]}
            for col in spec.chart
        ],
    }


def _report_keys(report: Report, q: Query) -> tuple[str, ...]:
    """The grouping keys as the report applied them (periods first; outcomes add campaign;
    topic implies category), read from its columns."""
    out = []
    for col in report.columns:
        if col in PERIOD_UNITS:
            out.append(col)
        elif col.endswith("_id") and col[:-3] in KEY_LABELS:
            out.append(col[:-3])
    return tuple(out) or q.group


def report_json(report: Report, q: Query) -> dict[str, Any]:
    return {
        "title": report.title,
        "report": q.kind,
        "from": q.first.isoformat(),
        "to": q.last.isoformat(),
        "zone": q.zone,
        "group": list(q.group),
        "columns": report.columns,
        "rows": [{c: _cell(r.get(c)) for c in report.columns} for r in report.rows],
        "meta": {k: _cell(v) for k, v in report.meta.items()},
        "chart": chart_data(report, q),
    }


class Reports:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.templates = make_templates()

    def _compute(self, q: Query) -> Report:
        with self.sessions() as s:
            return run_report(s, q)

    async def _report(self, q: Query) -> Report:
        return await run_in_threadpool(self._compute, q)

    # --- the page -----------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        user, lang, refused = await supervisor_page_user(request, self.templates)
        if refused is not None:
            return refused
        error = None
        q: Query | None = None
        report: Report | None = None
        try:
            q = parse_query(request)
            report = await self._report(q)
        except ReportError as exc:
            error = str(exc)
        status = 400 if error else 200
        if q is None:
            q = _fallback_query(request)
        query = request.url.query
        with i18n.use_language(lang):
            html = self.templates.get_template("reports.html").render(
                lang=lang,
                languages=i18n.LANGUAGES,
                user=user,
                q=q,
                kinds={k: _(v.label) for k, v in KINDS.items()},
                key_labels={k: _(v) for k, v in KEY_LABELS.items()},
                filter_hints={k: _(v) for k, v in FILTER_HINTS.items()},
                error=error,
                report=report,
                columns=shown_columns(report) if report else [],
                rows=[{c: _cell(r.get(c)) for c in report.columns} for r in report.rows]
                if report
                else [],
                chart=chart_data(report, q) if report else None,
                csv_url="/reports/export.csv" + (f"?{query}" if query else ""),
                **nav_context(request, "reports"),
            )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    # --- exports ------------------------------------------------------------------------

    async def export_csv(self, request: Request, user: User) -> Response:
        try:
            q = parse_query(request)
            report = await self._report(q)
        except ReportError as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain; charset=utf-8")
        name = f"{q.kind}-{q.first.isoformat()}-{q.last.isoformat()}.csv"
        log.info("report_export", by=user.username, report=q.kind, rows=len(report.rows))
        return Response(
            report.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    async def api(self, request: Request, user: User) -> Response:
        try:
            q = parse_query(request)
            report = await self._report(q)
        except ReportError as exc:
            return refusal(request, "invalid", 400, detail=str(exc), message=str(exc))
        return JSONResponse(report_json(report, q), headers={"Cache-Control": "no-store"})

    def routes(self) -> list[BaseRoute]:
        guard = require_role("supervisor")
        return [
            Route("/reports", self.page, methods=["GET"]),
            Route("/reports/export.csv", guard(self.export_csv), methods=["GET"]),
            Mount("/reports/static", app=StaticFiles(directory=str(STATIC)), name="reports-static"),
            Route("/api/reports", guard(self.api), methods=["GET"]),
        ]


def _fallback_query(request: Request) -> Query:
    """Something to fill the form with when the request itself could not be read."""
    kind = request.query_params.get("report", "inbound")
    kind = kind if kind in KINDS else "inbound"
    today = dt.date.today()
    return Query(kind, today - dt.timedelta(days=6), today, "UTC", KINDS[kind].default, {}, 20.0)
