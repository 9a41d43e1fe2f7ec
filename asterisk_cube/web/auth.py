"""Web login: password check against the agents table, signed-cookie sessions, CSRF, roles.

* Sessions are Starlette's ``SessionMiddleware`` (a cookie signed with itsdangerous).
  The key is ``[web] secret_key`` or, when that is empty, a random key generated once
  into ``<data_dir>/web-secret`` (mode 0600) so sessions survive restarts.
* The session holds the agent's id, role, name, language and a CSRF token. Handlers use
  :func:`current_user` and never take an agent id from the request.
* Every POST carries the CSRF token: the ``X-CSRF-Token`` header (JSON API) or a
  ``csrf_token`` form field (HTML forms); it must equal the session's token.
* Roles rank agent < supervisor < admin; ``@require_role("supervisor")`` lets
  supervisors and admins in.
* The account is re-read from the database at most every :data:`RECHECK_SECONDS` per
  session, so deactivating an agent or changing its role takes effect without waiting
  for the cookie to expire.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..db import models as m
from ..logs import get_logger
from ..passwords import verify_password
from .i18n import DEFAULT_LANGUAGE, negotiate, normalize, reason_message, use_language

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from ..config import Settings

log = get_logger(__name__)

SESSION_COOKIE = "cube_session"
SESSION_MAX_AGE = 12 * 3600  # one working day (and then some)
SECRET_FILE = "web-secret"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
RECHECK_SECONDS = 30.0
SCOPE_DIRECTORY = "cube.directory"
ROLE_RANK = {"agent": 1, "supervisor": 2, "admin": 3}

# A valid argon2 hash of a random password: checked when the username is unknown, so a
# wrong username costs the same time as a wrong password (no hint which one was wrong).
_DUMMY_HASH: str | None = None


def load_secret_key(settings: Settings) -> str:
    """``web.secret_key``, or the key kept in ``<data_dir>/web-secret`` (made once)."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.info("web_secret_created", path=str(path))
    return key


class _DirectoryMiddleware:
    """Puts the account directory into the ASGI scope for :func:`current_user`."""

    def __init__(self, app: Any, directory: AgentDirectory) -> None:
        self.app = app
        self.directory = directory

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[SCOPE_DIRECTORY] = self.directory
        await self.app(scope, receive, send)


def auth_middleware(
    settings: Settings,
    directory: AgentDirectory | None = None,
    *,
    https_only: bool = False,
    max_age: int = SESSION_MAX_AGE,
) -> list[Middleware]:
    """Session cookies (and the account directory, for re-checks) for the web routes."""
    out = [
        Middleware(
            SessionMiddleware,
            secret_key=load_secret_key(settings),
            session_cookie=SESSION_COOKIE,
            max_age=max_age,
            same_site="lax",
            https_only=https_only,
        )
    ]
    if directory is not None:
        out.append(Middleware(_DirectoryMiddleware, directory=directory))
    return out


# --- accounts --------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    agent_id: int
    username: str
    name: str
    role: str
    language: str

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


def _user(agent: m.Agent) -> User:
    return User(
        agent_id=agent.id,
        username=agent.username,
        name=agent.name,
        role=str(agent.role.value if hasattr(agent.role, "value") else agent.role),
        language=normalize(agent.language) or DEFAULT_LANGUAGE,
    )


class AgentDirectory:
    """Reads accounts from the agents table (blocking calls: run them in a thread)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def authenticate(self, username: str, password: str) -> User | None:
        """The active agent with this username and password, else None (no hint why)."""
        global _DUMMY_HASH
        with self.sessions() as s:
            agent = s.scalar(select(m.Agent).where(m.Agent.username == username))
            if agent is None or not agent.password_hash:
                if _DUMMY_HASH is None:
                    from ..passwords import hash_password

                    _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
                verify_password(_DUMMY_HASH, password)
                return None
            if not verify_password(agent.password_hash, password) or not agent.active:
                return None
            return _user(agent)

    def get(self, agent_id: int) -> User | None:
        """The account if it still exists and is active."""
        with self.sessions() as s:
            agent = s.get(m.Agent, agent_id)
            if agent is None or not agent.active:
                return None
            return _user(agent)

    def set_language(self, agent_id: int, language: str) -> None:
        with self.sessions() as s, s.begin():
            agent = s.get(m.Agent, agent_id)
            if agent is not None:
                agent.language = language


class LoginThrottle:
    """At most ``limit`` failed logins per username (and per client address) a window."""

    def __init__(self, limit: int = 8, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._fails: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(key, []) if now - t < self.window]
        if times:
            self._fails[key] = times
        else:
            self._fails.pop(key, None)
        return times

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._fails.setdefault(key, []).append(now)
        if len(self._fails) > 10_000:  # keep memory bounded under a spray of usernames
            for key in list(self._fails)[:5_000]:
                self._fails.pop(key, None)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._fails.pop(key, None)

    def forgive(self, *keys: str) -> None:
        """Take back the latest attempt counted for each key (it was not a failure)."""
        for key in keys:
            times = self._fails.get(key)
            if times:
                times.pop()
                if not times:
                    del self._fails[key]


class LoginBusy(Exception):
    """Every password-check slot and queue place is taken: refuse the login at once."""


# Password-check threads run at this nice level, so argon2 (which spreads one check over
# several threads) yields the CPU to the event loop that carries the calls.
LOGIN_NICE = 19


def _lower_priority() -> None:
    # Linux: the nice value is per thread and inherited by the threads it starts
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOGIN_NICE)


class PasswordGate:
    """Runs password checks in a small pool of their own (issue #12 item 1).

    An argon2 check costs 64 MiB and ~0.1 s of CPU: an unauthenticated client must not
    be able to buy as many at once as it sends requests. At most ``workers`` checks run
    at once (in low-priority threads, not Starlette's shared thread pool), at most
    ``queue`` more wait; beyond that :meth:`run` raises :class:`LoginBusy` at once."""

    def __init__(self, workers: int = 1, queue: int = 8) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be at least 1 and queue at least 0")
        self.workers = workers
        self.capacity = workers + queue
        self.pending = 0
        self.refused = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="cube-login", initializer=_lower_priority
        )

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pending >= self.capacity:
            self.refused += 1
            raise LoginBusy
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.pending -= 1


# --- the session ------------------------------------------------------------------------


def start_session(request: Request, user: User) -> str:
    """Log ``user`` in: a fresh session (and CSRF token). Returns the token."""
    request.session.clear()
    token = secrets.token_urlsafe(32)
    request.session.update(
        {
            "uid": user.agent_id,
            "user": user.username,
            "name": user.name,
            "role": user.role,
            "lang": user.language,
            "csrf": token,
            "checked": time.time(),
        }
    )
    return token


def end_session(request: Request) -> None:
    request.session.clear()


def session_user(request: Request) -> User | None:
    """The user in the session cookie, without asking the database."""
    session = request.session
    uid = session.get("uid")
    if not isinstance(uid, int):
        return None
    return User(
        agent_id=uid,
        username=str(session.get("user", "")),
        name=str(session.get("name", "")),
        role=str(session.get("role", "agent")),
        language=str(session.get("lang", DEFAULT_LANGUAGE)),
    )


async def current_user(request: Request) -> User | None:
    """The logged-in user, re-checked against the database now and then."""
    user = session_user(request)
    if user is None:
        return None
    directory: AgentDirectory | None = request.scope.get(SCOPE_DIRECTORY)
    checked = request.session.get("checked", 0)
    if directory is not None and time.time() - float(checked or 0) > RECHECK_SECONDS:
        fresh = await run_in_threadpool(directory.get, user.agent_id)
        if fresh is None:
            end_session(request)
            return None
        request.session.update({"role": fresh.role, "name": fresh.name, "checked": time.time()})
        user = User(user.agent_id, user.username, fresh.name, fresh.role, user.language)
    return user


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use, e.g. for the login form)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    if not expected or not submitted:
        return False
    return hmac.compare_digest(str(expected), str(submitted))


def request_language(request: Request) -> str:
    lang = request.session.get("lang") if "session" in request.scope else None
    return normalize(lang) or negotiate(request.headers.get("accept-language")) or DEFAULT_LANGUAGE


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def refusal(
    request: Request,
    reason: str,
    status: int,
    *,
    detail: str = "",
    field: str | None = None,
    message: str | None = None,
) -> JSONResponse:
    """The JSON answer for anything refused: a reason key and a translated message
    (``message`` overrides the reason's standard text, e.g. to name a field)."""
    with use_language(request_language(request)):
        body: dict[str, Any] = {"error": reason, "message": message or reason_message(reason)}
    if detail:
        body["detail"] = detail
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status)


Handler = Callable[..., Awaitable[Response]]


def require_role(role: str = "agent", *, csrf: bool = True) -> Callable[[Handler], Handler]:
    """Decorate a handler ``async def h(request, user)``: a logged-in user of at least
    ``role`` (agent < supervisor < admin); POST/PUT/PATCH/DELETE also need the CSRF token.

    Not logged in: 401 JSON (or a redirect to /login for a browser asking for HTML);
    lower role: 403; bad or missing CSRF token: 403.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            user = await current_user(request)
            if user is None:
                if wants_html(request) and request.method == "GET":
                    return RedirectResponse("/login", status_code=303)
                return refusal(request, "login_required", 401)
            if not user.has_role(role):
                return refusal(request, "forbidden", 403)
            if csrf and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                submitted = request.headers.get(CSRF_HEADER)
                if submitted is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")
                ):
                    form = await request.form()
                    value = form.get(CSRF_FIELD)
                    submitted = value if isinstance(value, str) else None
                if not csrf_ok(request, submitted):
                    return refusal(request, "csrf", 403)
            return await handler(request, user)

        return wrapper

    return decorate
