"""Logging in and out of the web app (every role): the login page and form, ``POST
/api/login`` and ``/api/logout``, the header's log-out form, and the password check behind
them, bounded against floods (issue #12): per-user and per-address throttles counted
*before* the slow argon2 check, which runs in its own small pool (``PasswordGate``).

A mixin of :class:`asterisk_cube.web.desktop.Desktop`, which mounts the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..acd.contract import NOT_FOUND, AgentDesk, Refused
from ..logs import get_logger
from . import i18n
from .auth import (
    CSRF_FIELD,
    AgentDirectory,
    LoginBusy,
    LoginThrottle,
    PasswordGate,
    User,
    csrf_ok,
    csrf_token,
    current_user,
    end_session,
    refusal,
    request_language,
    start_session,
)
from .i18n import gettext as _
from .inputs import BadInput, json_body, str_field
from .nav import landing

if TYPE_CHECKING:
    from starlette.responses import HTMLResponse

log = get_logger("asterisk_cube.web.desktop")  # the events keep their logger name

# HTTP status of a refused login, by reason (else 401)
LOGIN_STATUS = {"throttled": 429, "login_busy": 503}


class LoginPages:
    """The login and logout handlers; the desktop provides what is declared here."""

    desk: AgentDesk
    directory: AgentDirectory
    user_throttle: LoginThrottle
    addr_throttle: LoginThrottle
    password_gate: PasswordGate
    login_note: Any

    if TYPE_CHECKING:

        def render(
            self,
            request: Request,
            name: str,
            context: dict[str, Any],
            status: int = 200,
            headers: dict[str, str] = ...,
        ) -> HTMLResponse: ...

        def refused(self, request: Request, exc: Refused) -> JSONResponse: ...

        def bad_input(self, request: Request, exc: BadInput) -> JSONResponse: ...

    async def login_page(self, request: Request) -> Response:
        if user := await current_user(request):
            return RedirectResponse(landing(user), status_code=303)
        return self.render(request, "login.html", {"csrf_token": csrf_token(request)})

    async def login_form(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        token = form.get(CSRF_FIELD)
        if not csrf_ok(request, token if isinstance(token, str) else None):
            return self.render(
                request,
                "login.html",
                {"csrf_token": csrf_token(request), "error": "csrf", "username": username},
                status=403,
            )
        user, reason = await self._check_login(request, username, password)
        if user is None:
            return self.render(
                request,
                "login.html",
                {"csrf_token": csrf_token(request), "error": reason, "username": username},
                status=LOGIN_STATUS.get(reason, 401),
            )
        start_session(request, user)
        return RedirectResponse(landing(user), status_code=303)

    async def logout_form(self, request: Request) -> Response:
        """Log out from the header's form on any page (panel, reports, desk): as
        ``/api/logout``, then the login page."""
        form = await request.form()
        token = form.get(CSRF_FIELD)
        user = await current_user(request)
        if user is not None:
            if not csrf_ok(request, token if isinstance(token, str) else None):
                return refusal(request, "csrf", 403)
            with i18n.use_language(request_language(request)):
                refused = await self._log_out(request, user)
            if refused is not None:
                return refused
        return RedirectResponse("/login", status_code=303)

    async def _check_login(
        self, request: Request, username: str, password: str
    ) -> tuple[User | None, str]:
        addr = request.client.host if request.client else "-"
        keys = ("u:" + username.lower(), "a:" + addr)
        if self.user_throttle.blocked(keys[0]) or self.addr_throttle.blocked(keys[1]):
            self.login_note("web_login_throttled", username=username[:64], client=addr)
            return None, "throttled"
        # Count the attempt before the (slow) check, so that parallel requests see it; a
        # success takes it back.
        self.user_throttle.failed(keys[0])
        self.addr_throttle.failed(keys[1])
        user = None
        if username and password and len(username) <= 64 and len(password) <= 1024:
            try:
                user = await self.password_gate.run(self.directory.authenticate, username, password)
            except LoginBusy:
                self.user_throttle.forgive(keys[0])
                self.addr_throttle.forgive(keys[1])
                self.login_note(
                    "web_login_busy", client=addr, refused_total=self.password_gate.refused
                )
                return None, "login_busy"
        if user is None:
            log.info("web_login_failed", username=username, client=addr)
            return None, "bad_login"
        self.user_throttle.succeeded(keys[0])
        self.addr_throttle.forgive(keys[1])
        log.info("web_login", username=username, agent=user.agent_id, client=addr)
        return user, ""

    async def api_login(self, request: Request) -> Response:
        with i18n.use_language(request_language(request)):
            try:
                body = await json_body(request)
                username = str_field(body, "username", required=True, max_length=64)
                password = body.get("password")
                if not isinstance(password, str) or not password:
                    raise BadInput("password", _("is required"))
            except BadInput as exc:
                return self.bad_input(request, exc)
            user, reason = await self._check_login(request, username, password)
        if user is None:
            answer = refusal(request, reason, LOGIN_STATUS.get(reason, 401))
            if reason == "login_busy":
                answer.headers["Retry-After"] = "1"
            return answer
        token = start_session(request, user)
        return JSONResponse(
            {
                "ok": True,
                "csrf_token": token,
                "agent": {
                    "agent_id": user.agent_id,
                    "username": user.username,
                    "name": user.name,
                    "role": user.role,
                    "language": user.language,
                },
            }
        )

    async def api_logout(self, request: Request, user: User) -> Response:
        return await self._log_out(request, user) or JSONResponse({"ok": True})

    async def _log_out(self, request: Request, user: User) -> Response | None:
        """Log the agent out and end its sessions; the refusal to send if the desk refused."""
        try:
            view = await self.desk.view(user.agent_id)
            if view.state != "logged_out":
                await self.desk.logout(user.agent_id)
        except Refused as exc:
            if exc.reason != NOT_FOUND:
                return self.refused(request, exc)
        # ends this session and every other of this agent (a copied cookie is dead too)
        await run_in_threadpool(self.directory.revoke, user.agent_id)
        end_session(request)
        log.info("web_logout", agent=user.agent_id)
        return None
