"""The supervisors' live panel (F-M1): page, SSE push and actions.

Routes (supervisors and admins only; agents get 403, anonymous users 401 or the login
page; every POST needs the session's CSRF token in ``X-CSRF-Token``)::

    GET  /panel                                     HTML page (server-rendered, plain JS)
    GET  /panel/events                              SSE: snapshot, then patches (panel_feed)
    GET  /panel/static/...                          panel.js, panel.css
    GET  /api/panel                                 the whole state as JSON (same as snapshot)
    POST /api/panel/lines/{line_id}/priority        {priority: int}        (F-I3 order)
    POST /api/panel/agents/{agent_id}/lines         {line_ids: [int]}      (staffing, F-I2)
    POST /api/panel/agents/{agent_id}/pause         {reason: code}         (default "supervisor")
    POST /api/panel/agents/{agent_id}/ready                                (unpause)
    POST /api/panel/campaigns/{campaign_id}/status  {status: running|paused|stopped}

Actions answer ``{"ok": true, ...}`` and are written to ``audit_log`` with the
supervisor's username and id; refusals use the desktop's JSON shape (``error``,
``message``, ``detail``, ``field``) with 400/403/404/409.

Mount: pass :meth:`Panel.routes` as ``extra_routes`` to ``desktop_mount`` so the panel
shares the desktop's login session (``wiring._web_routes`` does).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from asterisk_cube.web.pages import SECURITY_HEADERS, STATIC, make_templates, supervisor_page_user

from ..acd.contract import ILLEGAL_STATE, INVALID, Refused
from ..acd.supervision import Supervision
from ..db.session import transaction
from ..limits import RateLimitedLog
from ..logs import get_logger
from ..services import supervision as svc
from . import i18n
from .auth import (
    STATUS_FOR_REASON,
    User,
    csrf_token,
    current_user,
    refusal,
    request_language,
    require_role,
    still_signed_in,
)
from .i18n import N_
from .i18n import gettext as _
from .inputs import BadInput, id_list, int_field, json_body, path_id, str_field
from .nav import nav_context
from .panel_feed import PanelFeed
from .push import HEARTBEAT_SECONDS, LOGIN_REQUIRED, StreamSlots, _stopping, sse_response

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = get_logger(__name__)

MAX_STREAMS_PER_SUPERVISOR = 4  # open panel streams per supervisor; a fifth is refused (429)

SUPERVISOR_PAUSE = "supervisor"

# Words the panel's JavaScript shows by key (translated per request).
DEVICE_STATES: dict[str, str] = {
    "not_inuse": N_("Idle"),
    "inuse": N_("In use"),
    "busy": N_("Busy"),
    "ringing": N_("Ringing"),
    "ringinuse": N_("Ringing (in use)"),
    "onhold": N_("On hold"),
    "unavailable": N_("Unavailable"),
    "invalid": N_("Invalid"),
    "unknown": N_("Unknown"),
}
CALL_PHASES: dict[str, str] = {
    "waiting": N_("Waiting"),
    "offered": N_("Offered"),
    "connecting": N_("Connecting"),
    "connected": N_("Connected"),
}
CAMPAIGN_STATUSES: dict[str, str] = {
    "running": N_("Running"),
    "paused": N_("Paused"),
    "stopped": N_("Stopped"),
}
DIAL_MODES: dict[str, str] = {
    "preview": N_("Preview"),
    "power": N_("Power"),
    "predictive": N_("Predictive"),
}
#: The dialer's last pacing decision (``core.pacing.PacingDecision.reason``).
PACING_REASONS: dict[str, str] = {
    "power": N_("Power: a line per ready agent"),
    "predictive": N_("Predictive: dialing ahead"),
    "conservative": N_("Careful: abandon rate near the cap"),
    "learning": N_("Learning the campaign: a line per ready agent"),
    "idle": N_("Holding: no agent free or the line limit reached"),
}
SUPERVISOR_PAUSE_LABEL = N_("Paused by a supervisor")


def panel_words() -> dict[str, dict[str, str]]:
    words = i18n.word_catalog()
    words["devices"] = {k: _(v) for k, v in DEVICE_STATES.items()}
    words["phases"] = {k: _(v) for k, v in CALL_PHASES.items()}
    words["campaign_status"] = {k: _(v) for k, v in CAMPAIGN_STATUSES.items()}
    words["modes"] = {k: _(v) for k, v in DIAL_MODES.items()}
    words["pacing"] = {k: _(v) for k, v in PACING_REASONS.items()}
    words["pause"][SUPERVISOR_PAUSE] = _(SUPERVISOR_PAUSE_LABEL)
    return words


Api = Callable[[Request, User], Awaitable[Response]]


class Panel:
    def __init__(
        self,
        feed: PanelFeed,
        acd: Supervision,
        sessions: sessionmaker[Session],
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.feed = feed
        self.acd = acd
        self.sessions = sessions
        self.heartbeat = heartbeat
        self.templates = make_templates()
        self.streams = StreamSlots(
            MAX_STREAMS_PER_SUPERVISOR, RateLimitedLog(log.warning), "panel_streams_refused"
        )

    # --- plumbing -----------------------------------------------------------------------

    def api(self, handler: Api, *, csrf: bool = True) -> Callable[[Request], Awaitable[Response]]:
        @require_role("supervisor", csrf=csrf)
        async def endpoint(request: Request, user: User) -> Response:
            with i18n.use_language(request_language(request)):
                try:
                    return await handler(request, user)
                except BadInput as exc:
                    reason = {415: "unsupported_media_type", 413: "too_large"}.get(
                        exc.status, INVALID
                    )
                    text = f"{exc.field}: {exc.message}"
                    return refusal(
                        request, reason, exc.status, detail=text, field=exc.field, message=text
                    )
                except svc.SupervisionError as exc:
                    status = STATUS_FOR_REASON.get(exc.reason, 400)
                    return refusal(request, exc.reason, status, detail=exc.message, field=exc.field)
                except Refused as exc:
                    return refusal(
                        request,
                        exc.reason,
                        STATUS_FOR_REASON.get(exc.reason, 400),
                        detail=exc.message,
                    )
                except Exception:
                    log.exception("panel_api_failed", path=request.url.path, user=user.username)
                    return refusal(request, "internal", 500)

        endpoint.__name__ = handler.__name__
        return endpoint

    def _audit(self, user: User, action: str, target: str, **details: Any) -> None:
        with transaction(self.sessions) as s:
            svc.audit(s, user.username, user.agent_id, action, target, **details)

    def _agent_row(self, agent_id: int) -> dict[str, Any]:
        """The agent as the distributor has it now (not the feed's last build)."""
        for row in self.acd.panel_snapshot().agents:
            if row.agent_id == agent_id:
                return {
                    "username": row.username,
                    "state": row.state,
                    "pause_reason": row.pause_reason,
                    "lines": list(row.chosen),
                }
        raise svc.SupervisionError("not_found", "agent_id", f"no agent {agent_id}")

    def pause_reasons(self) -> list[tuple[str, str]]:
        with self.sessions() as s:
            out = [(code, i18n.pause_label(code, label)) for code, label in svc.pause_reasons(s)]
        return [(SUPERVISOR_PAUSE, _(SUPERVISOR_PAUSE_LABEL)), *out]

    # --- page and push ------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        user, lang, refused = await supervisor_page_user(request, self.templates)
        if refused is not None:
            return refused
        assert user is not None  # no refusal: signed in
        reasons = await run_in_threadpool(self._pause_reasons_in, lang)
        with i18n.use_language(lang):
            data = {
                "csrf": csrf_token(request),
                "lang": lang,
                "user": {"name": user.name, "username": user.username, "role": user.role},
                "catalog": i18n.js_catalog(lang),
                "words": panel_words(),
                "pause_reasons": reasons,
            }
            html = self.templates.get_template("panel.html").render(
                lang=lang,
                languages=i18n.LANGUAGES,
                user=user,
                data=data,
                **nav_context(request, "panel"),
            )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def _pause_reasons_in(self, lang: str) -> list[tuple[str, str]]:
        with i18n.use_language(lang):
            return self.pause_reasons()

    async def events(self, request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return refusal(request, "login_required", 401)
        if not user.has_role("supervisor"):
            return refusal(request, "forbidden", 403)
        place = self.streams.take(user.username)
        if place is None:
            return refusal(request, "too_many_panels", 429)
        return sse_response(self.stream(request, user, place))

    async def stream(
        self, request: Request, user: User | None = None, place: asyncio.Event | None = None
    ):
        """The panel feed; ends when the supervisor's session does (checked every second
        and before every message, from the directory's in-memory copy)."""
        client = await self.feed.subscribe_fresh()
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 2000\n\n"
            last_sent = loop.time()
            while True:
                try:
                    message = await client.next(timeout=1.0)
                except TimeoutError:
                    if _stopping(request):
                        return
                    if user is not None and not await still_signed_in(request, user):
                        yield LOGIN_REQUIRED
                        return
                    if loop.time() - last_sent >= self.heartbeat:
                        last_sent = loop.time()
                        yield ": ping\n\n"
                    continue
                if message is None:
                    return
                if user is not None and not await still_signed_in(request, user):
                    yield LOGIN_REQUIRED
                    return
                last_sent = loop.time()
                yield message
        finally:
            client.close()
            if user is not None and place is not None:
                self.streams.release(user.username, place)

    async def api_state(self, request: Request, user: User) -> Response:
        _seq, message = await self.feed.current()
        body = message.split("data: ", 1)[1].rstrip("\n")
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    # --- actions ------------------------------------------------------------------------

    async def line_priority(self, request: Request, user: User) -> Response:
        line_id = path_id(request, "line_id")
        body = await json_body(request)
        priority = int_field(body, "priority", minimum=svc.PRIORITY_MIN, maximum=svc.PRIORITY_MAX)
        with transaction(self.sessions) as s:
            line, old = svc.set_line_priority(
                s, line_id, priority, actor=user.username, actor_id=user.agent_id
            )
            did = line.did
        self.acd.lines_changed()  # the next routing decision follows it
        log.info("panel_line_priority", by=user.username, line=did, old=old, new=priority)
        return JSONResponse({"ok": True, "line_id": line_id, "old": old, "priority": priority})

    async def agent_lines(self, request: Request, user: User) -> Response:
        agent_id = path_id(request, "agent_id")
        body = await json_body(request)
        line_ids = id_list(body, "line_ids")
        before = self._agent_row(agent_id)
        await self.acd.choose_lines(agent_id, line_ids)
        self._audit(
            user,
            "agent_lines",
            before["username"],
            agent_id=agent_id,
            old=before["lines"],
            new=sorted(line_ids),
        )
        log.info("panel_agent_lines", by=user.username, agent=before["username"], lines=line_ids)
        return JSONResponse({"ok": True, "agent_id": agent_id, "line_ids": sorted(line_ids)})

    async def agent_pause(self, request: Request, user: User) -> Response:
        agent_id = path_id(request, "agent_id")
        body = await json_body(request)
        reason = str_field(body, "reason", max_length=32) or SUPERVISOR_PAUSE
        allowed = {code for code, _label in await run_in_threadpool(self.pause_reasons)}
        if reason not in allowed:
            raise BadInput("reason", _("is not one of the pause reasons"))
        before = self._agent_row(agent_id)
        await self.acd.force_pause(agent_id, reason)
        self._audit(
            user,
            "agent_pause",
            before["username"],
            agent_id=agent_id,
            reason=reason,
            state=before["state"],
        )
        log.info("panel_agent_pause", by=user.username, agent=before["username"], reason=reason)
        return JSONResponse({"ok": True, "agent_id": agent_id, "reason": reason})

    async def agent_ready(self, request: Request, user: User) -> Response:
        agent_id = path_id(request, "agent_id")
        await json_body(request)
        before = self._agent_row(agent_id)
        if before["state"] != "paused":
            raise Refused(ILLEGAL_STATE, f"agent {before['username']} is not paused")
        await self.acd.ready(agent_id)
        self._audit(
            user,
            "agent_unpause",
            before["username"],
            agent_id=agent_id,
            reason=before["pause_reason"],
        )
        log.info("panel_agent_unpause", by=user.username, agent=before["username"])
        return JSONResponse({"ok": True, "agent_id": agent_id})

    async def campaign_status(self, request: Request, user: User) -> Response:
        campaign_id = path_id(request, "campaign_id")
        body = await json_body(request)
        status = str_field(body, "status", required=True, max_length=16)
        with transaction(self.sessions) as s:
            campaign, old = svc.set_campaign_status(
                s, campaign_id, status, actor=user.username, actor_id=user.agent_id
            )
            name = campaign.name
        self.feed.campaigns_touched()
        log.info("panel_campaign_status", by=user.username, campaign=name, old=old, new=status)
        return JSONResponse({"ok": True, "campaign_id": campaign_id, "old": old, "status": status})

    # --- routes -------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        a = self.api
        return [
            Route("/panel", self.page, methods=["GET"]),
            Route("/panel/events", self.events, methods=["GET"]),
            Mount("/panel/static", app=StaticFiles(directory=str(STATIC)), name="panel-static"),
            Route("/api/panel", a(self.api_state), methods=["GET"]),
            Route("/api/panel/lines/{line_id}/priority", a(self.line_priority), methods=post),
            Route("/api/panel/agents/{agent_id}/lines", a(self.agent_lines), methods=post),
            Route("/api/panel/agents/{agent_id}/pause", a(self.agent_pause), methods=post),
            Route("/api/panel/agents/{agent_id}/ready", a(self.agent_ready), methods=post),
            Route(
                "/api/panel/campaigns/{campaign_id}/status",
                a(self.campaign_status),
                methods=post,
            ),
        ]


def panel_json(feed: PanelFeed) -> dict[str, Any]:
    """The whole state as a dict (tests, CLI)."""
    _seq, message = feed.snapshot_message()
    return json.loads(message.split("data: ", 1)[1])
