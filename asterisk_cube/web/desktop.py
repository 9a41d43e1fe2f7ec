"""The agent desktop: login pages, the desk page, its JSON API and the SSE push.

Everything here talks to the call distributor only through
:class:`asterisk_cube.acd.contract.AgentDesk`, with the agent id from the session —
never an id from the request. Routes (all JSON unless noted)::

    GET  /                          -> redirect to /desk (or /login)
    GET  /login, POST /login        HTML login form (form POST with csrf_token)
    GET  /desk                      HTML desk page (server-rendered, plain JS)
    GET  /desk/events               SSE: the AgentView now, then on every change
    GET  /desk/static/...           desk.js, desk.css
    POST /api/login                 {username, password} -> {csrf_token, agent}
    POST /api/logout                end work (desk.logout) and the session
    GET  /api/me                    AgentView
    GET  /api/health                /health with error details (supervisor, admin)
    POST /api/start                 start work (desk.login)
    POST /api/end                   end work, stay signed in (desk.logout)
    POST /api/lines                 {line_ids: [int]}
    POST /api/ready
    POST /api/pause                 {reason: code}
    POST /api/pause/cancel          take back a pause requested for after the call
    POST /api/offers/{call_id}/accept | /decline
    POST /api/calls/{call_id}/hangup | /close
    POST /api/calls/{call_id}/enquiry      {topic_ids: [int], comment}
    POST /api/calls/{call_id}/contact      {contact_id}
    POST /api/calls/{call_id}/contact/new  {name, phone, company, email}
    GET  /api/contacts?q=           {contacts: [ContactView]}
    POST /api/missed/{missed_id}/callback | /processed
    POST /api/wrapup/finish
    POST /api/wrapup/extend         {seconds}
    POST /api/language              {language: "en" | "nb"}
    GET  /api/phone, POST /api/phone        desk or browser phone (see web/phone.py)
    GET  /api/test-call, POST /api/test-call   the demo's test call (see web/testcall.py)
    GET  /api/calls/{call_id}/script        answering service (see web/answering.py)
    POST /api/calls/{call_id}/forward       {employee_id | null}
    POST /api/calls/{call_id}/forward/connect | /forward/cancel
    POST /api/calls/{call_id}/note          {message, caller_name, callback_number, employee_id}
    GET  /api/calls/{call_id}/callback      scheduled callbacks (see web/callbacks.py)
    POST /api/calls/{call_id}/callback      {due_at, comment, for: "me" | "all"}
    GET  /api/callbacks                     the agent's scheduled calls
    POST /api/callbacks/{callback_id}/cancel

Every POST needs the session's CSRF token in ``X-CSRF-Token``. Successful actions
answer ``{"ok": true, "view": AgentView}``; refusals ``{"error": reason, "message":
translated, "detail": ..., "field": ...}`` with 400 (invalid), 401 (not logged in),
403 (CSRF, role, not permitted), 404 (not found / not yours), 409 (illegal state,
registration required), 415 (not JSON), 429 (too many failed logins).

Mount with :func:`desktop_mount` (routes + session middleware in one ``Mount("")``).
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..acd.contract import (
    ILLEGAL_STATE,
    INVALID,
    NOT_FOUND,
    NOT_PERMITTED,
    OTHER_NODE,
    REGISTRATION_REQUIRED,
    AgentDesk,
    AgentView,
    Refused,
)
from ..core.numbers import InvalidNumber, check_typed
from ..core.phones import csp_origin
from ..events import EventHub
from ..health_state import health_payload
from ..limits import RateLimitedLog
from ..logs import get_logger
from . import i18n
from .auth import (
    AgentDirectory,
    LoginThrottle,
    PasswordGate,
    User,
    auth_middleware,
    csrf_token,
    current_user,
    refusal,
    request_language,
    require_role,
    still_signed_in,
)
from .desk_host import Api
from .i18n import gettext as _
from .inputs import BadInput, id_list, int_field, json_body, path_id, str_field
from .login import LoginPages
from .nav import landing, nav_context
from .push import HEARTBEAT_SECONDS, StreamSlots, sse_response, view_stream
from .testcall import desk_test_call

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from ..config import Settings

from .pages import CSP, SECURITY_HEADERS, STATIC, make_templates

log = get_logger(__name__)

MAX_BODY = 64 * 1024
MAX_STREAMS_PER_AGENT = 4  # open event streams (tabs) per agent; a fifth is refused (429)

STATUS_FOR_REASON = {
    NOT_FOUND: 404,
    NOT_PERMITTED: 403,
    ILLEGAL_STATE: 409,
    REGISTRATION_REQUIRED: 409,
    OTHER_NODE: 409,
    INVALID: 400,
}


def _field_of(message: str) -> str | None:
    head, sep, _rest = message.partition(":")
    return head.strip() if sep and head.strip().isidentifier() else None


class Desktop(LoginPages):
    """The desktop's handlers around one :class:`AgentDesk` (logging in and out:
    :class:`~asterisk_cube.web.login.LoginPages`)."""

    def __init__(
        self,
        desk: AgentDesk,
        hub: EventHub,
        sessions: sessionmaker[Session] | None,
        *,
        directory: AgentDirectory | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        clock: Callable[[], dt.datetime] | None = None,
        dialer: Any = None,
        password_gate: PasswordGate | None = None,
        webrtc_url: str = "",
        secret_key: str = "",
    ) -> None:
        if directory is None:
            if sessions is None:
                raise ValueError("give a DB sessionmaker or an AgentDirectory")
            directory = AgentDirectory(sessions)
        self.desk = desk
        self.hub = hub
        self.sessions = sessions
        self.clock = clock  # the answering script's "now" (tests pin it)
        self.dialer = dialer  # callbacks scheduled during a dialer call (web/callbacks.py)
        self.directory = directory
        self.heartbeat = heartbeat
        self.templates = make_templates()
        self.user_throttle = LoginThrottle(limit=5, window=60.0)
        self.addr_throttle = LoginThrottle(limit=30, window=60.0)
        self.password_gate = password_gate or PasswordGate()
        self.login_note = RateLimitedLog(log.warning)
        self.streams = StreamSlots(MAX_STREAMS_PER_AGENT, self.login_note, "desk_streams_refused")
        self.phone = None
        self.desk_headers = SECURITY_HEADERS  # the desk page's: + Asterisk's WebSocket
        if sessions is not None:
            from .phone import BrowserPhone

            self.phone = BrowserPhone(self, sessions, webrtc_url, secret_key)
            if self.phone.available:  # the desk's WebSocket to Asterisk, that one only
                self.desk_headers = {
                    **SECURITY_HEADERS,
                    "Content-Security-Policy": CSP.format(connect=" " + csp_origin(webrtc_url)),
                }

    # --- plumbing -----------------------------------------------------------------------

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] = SECURITY_HEADERS,
    ) -> HTMLResponse:
        lang = request_language(request)
        with i18n.use_language(lang):
            html = self.templates.get_template(name).render(
                lang=lang, languages=i18n.LANGUAGES, **context
            )
        return HTMLResponse(html, status_code=status, headers=headers)

    def refused(self, request: Request, exc: Refused) -> JSONResponse:
        status = STATUS_FOR_REASON.get(exc.reason, 400)
        field = _field_of(exc.message) if exc.reason == INVALID else None
        message = None
        if field:  # name the field in the (translated) message too
            with i18n.use_language(request_language(request)):
                message = f"{field}: {i18n.reason_message(INVALID)}"
        node = getattr(exc, "node", None)
        if exc.reason == OTHER_NODE and node:  # name the node the agent works on
            with i18n.use_language(request_language(request)):
                message = _("You are logged in on node %(node)s. Log out there first.") % {
                    "node": node
                }
        return refusal(
            request, exc.reason, status, detail=exc.message, field=field, message=message
        )

    def bad_input(self, request: Request, exc: BadInput) -> JSONResponse:
        """400 (or 415) naming the field: ``{"error": "invalid", "field": "line_ids",
        "message": "line_ids: must be a list of ids"}``."""
        reason = {415: "unsupported_media_type", 413: "too_large"}.get(exc.status, INVALID)
        text = f"{exc.field}: {exc.message}"
        return refusal(request, reason, exc.status, detail=text, field=exc.field, message=text)

    async def view_payload(self, agent_id: int) -> dict[str, Any]:
        return (await self.desk.view(agent_id)).to_dict()

    def api(
        self, handler: Api, *, csrf: bool = True, here: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Login + role + CSRF, then the handler; bad input and refusals become JSON.
        ``here``: the handler uses the agent's desk, refused (409 ``other_node``) while
        the agent works on another node."""

        @require_role("agent", csrf=csrf)
        async def endpoint(request: Request, user: User) -> Response:
            with i18n.use_language(request_language(request)):
                try:
                    if here:
                        await self.desk.check_owner(user.agent_id)
                    return await handler(request, user)
                except BadInput as exc:
                    return self.bad_input(request, exc)
                except Refused as exc:
                    return self.refused(request, exc)
                except Exception:
                    log.exception("desk_api_failed", path=request.url.path, agent=user.agent_id)
                    return refusal(request, "internal", 500)

        endpoint.__name__ = handler.__name__
        return endpoint

    def action(
        self, op: Callable[[Request, User, dict[str, Any]], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST that reads a JSON body, calls the desk, and answers with the fresh view
        (or with the response ``op`` returns, e.g. a refusal of its own)."""

        async def handler(request: Request, user: User) -> Response:
            body = await json_body(request)
            answer = await op(request, user, body)
            if isinstance(answer, Response):
                return answer
            return JSONResponse({"ok": True, "view": await self.view_payload(user.agent_id)})

        handler.__name__ = op.__name__
        return self.api(handler)

    # --- pages --------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        user = await current_user(request)
        return RedirectResponse(landing(user) if user else "/login", status_code=303)

    async def desk_page(self, request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        try:
            await self.desk.check_owner(user.agent_id)
            view = await self.desk.view(user.agent_id)
        except Refused as exc:
            status = 409 if exc.reason == OTHER_NODE else 404
            return self.render(
                request, "message.html", {"message": i18n.reason_message(exc.reason)}, status
            )
        lang = request_language(request)
        with i18n.use_language(lang):
            data = {
                "view": view.to_dict(),
                "csrf": csrf_token(request),
                "lang": lang,
                "user": {"name": user.name, "username": user.username, "role": user.role},
                "catalog": i18n.js_catalog(lang),
                "words": i18n.word_catalog(),
                "phone": None if self.phone is None else await self.phone.state(user),
            }
        return self.render(
            request,
            "desk.html",
            {"user": user, "data": data, **nav_context(request, "desk")},
            headers=self.desk_headers,
        )

    async def events(self, request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return refusal(request, "login_required", 401)
        try:  # an agent working on another node: 409 naming it, not an empty stream
            await self.desk.check_owner(user.agent_id)
        except Refused as exc:
            with i18n.use_language(request_language(request)):
                return self.refused(request, exc)
        # At most MAX_STREAMS_PER_AGENT streams per agent (the desk retries a refused one
        # in 2 s; a reloaded tab's old stream ends as soon as its connection closes).
        superseded = self.streams.take(user.agent_id)
        if superseded is None:
            return refusal(request, "too_many_streams", 429)

        async def stream() -> AsyncIterator[str]:
            try:
                async for chunk in view_stream(
                    request,
                    self.desk,
                    self.hub,
                    user.agent_id,
                    render=AgentView.to_dict,
                    heartbeat=self.heartbeat,
                    superseded=superseded,
                    signed_in=lambda: still_signed_in(request, user),
                ):
                    yield chunk
            finally:
                self.streams.release(user.agent_id, superseded)

        return sse_response(stream())

    # --- JSON API -----------------------------------------------------------------------

    async def api_health(self, request: Request, user: User) -> Response:
        """``/health`` with the error details, for supervisors and admins."""
        state = getattr(request.app.state, "cube", None)
        return JSONResponse(health_payload(state, details=True))

    async def api_me(self, request: Request, user: User) -> Response:
        return JSONResponse(await self.view_payload(user.agent_id))

    async def api_contacts(self, request: Request, user: User) -> Response:
        query = str_field(dict(request.query_params), "q", max_length=100)
        contacts = await self.desk.search_contacts(user.agent_id, query)
        return JSONResponse({"contacts": [_contact_dict(c) for c in contacts]})

    async def api_language(self, request: Request, user: User) -> Response:
        body = await json_body(request)
        raw = str_field(body, "language", required=True, max_length=16)
        language = i18n.normalize(raw)
        if language is None:
            raise BadInput("language", _("is not a supported language"))
        request.session["lang"] = language
        await run_in_threadpool(self.directory.set_language, user.agent_id, language)
        return JSONResponse({"ok": True, "language": language})

    # desk actions: (request, user, body) -> None

    async def start(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.login(user.agent_id)

    async def end(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.logout(user.agent_id)

    async def lines(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.choose_lines(user.agent_id, id_list(body, "line_ids"))

    async def ready(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.ready(user.agent_id)

    async def pause(self, request: Request, user: User, body: dict[str, Any]) -> None:
        reason = str_field(body, "reason", required=True, max_length=32)
        view = await self.desk.view(user.agent_id)
        if reason not in {code for code, _label in view.pause_reasons}:
            raise BadInput("reason", _("is not one of your pause reasons"))
        await self.desk.pause(user.agent_id, reason)

    async def cancel_pause(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.cancel_pause(user.agent_id)

    async def accept(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.accept(user.agent_id, path_id(request, "call_id"))

    async def decline(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.decline(user.agent_id, path_id(request, "call_id"))

    async def hangup(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.hangup(user.agent_id, path_id(request, "call_id"))

    async def close_call(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.close_call(user.agent_id, path_id(request, "call_id"))

    async def enquiry(self, request: Request, user: User, body: dict[str, Any]) -> None:
        call_id = path_id(request, "call_id")
        topic_ids = id_list(body, "topic_ids")
        comment = str_field(body, "comment", max_length=4000, multiline=True)
        await self.desk.register_enquiry(user.agent_id, call_id, topic_ids, comment)

    async def attach_contact(self, request: Request, user: User, body: dict[str, Any]) -> None:
        call_id = path_id(request, "call_id")
        await self.desk.attach_contact(user.agent_id, call_id, int_field(body, "contact_id"))

    async def create_contact(self, request: Request, user: User, body: dict[str, Any]) -> None:
        call_id = path_id(request, "call_id")
        name = str_field(body, "name", max_length=200)
        phone = str_field(body, "phone", max_length=32)
        company = str_field(body, "company", max_length=200)
        email = str_field(body, "email", max_length=200)
        if not name and not phone:
            raise BadInput("name", _("give a name or a phone number"))
        if email and ("@" not in email or any(c.isspace() for c in email)):
            raise BadInput("email", _("is not an e-mail address"))
        if phone:
            try:  # 12ab34 is a typo: refused, never stored with the letters stripped
                check_typed(phone)
            except InvalidNumber:
                raise BadInput("phone", _("is not a valid phone number")) from None
        await self.desk.create_contact(user.agent_id, call_id, name, phone, company, email)

    async def callback(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.callback_missed(user.agent_id, path_id(request, "missed_id"))

    async def processed(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.mark_missed_processed(user.agent_id, path_id(request, "missed_id"))

    async def finish_wrap_up(self, request: Request, user: User, body: dict[str, Any]) -> None:
        await self.desk.finish_wrap_up(user.agent_id)

    async def extend_wrap_up(self, request: Request, user: User, body: dict[str, Any]) -> None:
        seconds = int_field(body, "seconds", minimum=1, maximum=3600)
        await self.desk.extend_wrap_up(user.agent_id, seconds)

    # --- routes -------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        a = self.action
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login_form, methods=post),
            Route("/desk", self.desk_page, methods=["GET"]),
            Route("/desk/events", self.events, methods=["GET"]),
            Mount("/desk/static", app=StaticFiles(directory=str(STATIC)), name="desk-static"),
            Route("/api/login", self.api_login, methods=post),
            Route("/api/logout", self.api(self.api_logout), methods=post),
            Route("/logout", self.logout_form, methods=post),
            Route("/api/me", self.api(self.api_me), methods=["GET"]),
            Route("/api/health", require_role("supervisor")(self.api_health), methods=["GET"]),
            Route("/api/events", self.events, methods=["GET"]),
            Route("/api/contacts", self.api(self.api_contacts), methods=["GET"]),
            Route("/api/language", self.api(self.api_language, here=False), methods=post),
            Route("/api/start", a(self.start), methods=post),
            Route("/api/end", a(self.end), methods=post),
            Route("/api/lines", a(self.lines), methods=post),
            Route("/api/ready", a(self.ready), methods=post),
            Route("/api/pause", a(self.pause), methods=post),
            Route("/api/pause/cancel", a(self.cancel_pause), methods=post),
            Route("/api/offers/{call_id}/accept", a(self.accept), methods=post),
            Route("/api/offers/{call_id}/decline", a(self.decline), methods=post),
            Route("/api/calls/{call_id}/hangup", a(self.hangup), methods=post),
            Route("/api/calls/{call_id}/close", a(self.close_call), methods=post),
            Route("/api/calls/{call_id}/enquiry", a(self.enquiry), methods=post),
            Route("/api/calls/{call_id}/contact", a(self.attach_contact), methods=post),
            Route("/api/calls/{call_id}/contact/new", a(self.create_contact), methods=post),
            Route("/api/missed/{missed_id}/callback", a(self.callback), methods=post),
            Route("/api/missed/{missed_id}/processed", a(self.processed), methods=post),
            Route("/api/wrapup/finish", a(self.finish_wrap_up), methods=post),
            Route("/api/wrapup/extend", a(self.extend_wrap_up), methods=post),
            *self.answering_routes(),
            *self.callback_routes(),
            *([] if self.phone is None else self.phone.routes()),
        ]

    def answering_routes(self) -> list[BaseRoute]:
        """The answering service's script, forward and note routes (need the database)."""
        if self.sessions is None:
            return []
        from .answering import Answering

        return Answering(self, self.sessions, clock=self.clock).routes()

    def callback_routes(self) -> list[BaseRoute]:
        """Scheduled callbacks from the desk (F-E6; need the database)."""
        if self.sessions is None:
            return []
        from .callbacks import Callbacks

        return Callbacks(self, self.sessions, feedback=self.dialer, clock=self.clock).routes()


def _contact_dict(contact: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(contact)


def desktop_routes(
    desk: AgentDesk,
    hub: EventHub,
    sessions_factory: sessionmaker[Session] | None,
    **kwargs: Any,
) -> list[BaseRoute]:
    """The desktop's routes; they need :func:`auth.auth_middleware` around them."""
    return Desktop(desk, hub, sessions_factory, **kwargs).routes()


def desktop_mount(
    settings: Settings,
    desk: AgentDesk,
    hub: EventHub,
    sessions_factory: sessionmaker[Session] | None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    https_only: bool | None = None,
    **kwargs: Any,
) -> Mount:
    """One ``Mount("")`` holding the desktop routes (and ``extra_routes``, e.g. the
    panel's, so they share the login session) behind the session middleware.

    Put it *last* in ``create_app(extra_routes=[...])``: it answers every path the
    routes before it did not match."""
    kwargs.setdefault(
        "password_gate", PasswordGate(settings.web.login_workers, settings.web.login_queue)
    )
    if settings.webrtc.ws_url:  # the browser phone (web/phone.py)
        from .auth import load_secret_key

        kwargs.setdefault("webrtc_url", settings.webrtc.ws_url)
        kwargs.setdefault("secret_key", load_secret_key(settings))
    desktop = Desktop(desk, hub, sessions_factory, **kwargs)
    if https_only is None:  # the Secure cookie flag: [web] secure_cookie
        https_only = settings.web.secure_cookie
    middleware = auth_middleware(settings, desktop.directory, https_only=https_only)
    routes = [*desktop.routes(), *desk_test_call(desktop, settings.demo), *extra_routes]
    if "max_body_size" in inspect.signature(Mount.__init__).parameters:
        return Mount("", routes=routes, middleware=middleware, max_body_size=MAX_BODY)
    return Mount("", routes=routes, middleware=middleware)
