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
* Sessions are revocable server-side: the cookie records the agent's
  ``session_version`` at login, and every request (and every tick of an open event
  stream, :func:`still_signed_in`) compares it with the current one. Logout, a password
  change, deactivation and a role change bump it (``AgentDirectory.revoke``,
  ``services.provisioning.update_agent``), so the cookie stops being a bearer token at
  once, on every device. Cost: no database read per request — :class:`AgentDirectory`
  keeps every account's (version, active, role, name) in memory and re-reads the whole
  (small) agents table in one query when that copy is older than :data:`RECHECK_SECONDS`;
  a change made by this process (logout) updates the copy at once, one made by the CLI
  or another node is seen within :data:`RECHECK_SECONDS`.
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

from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..acd.contract import ILLEGAL_STATE, INVALID, NOT_FOUND, NOT_PERMITTED
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
RECHECK_SECONDS = 2.0  # how stale the in-memory copy of the accounts may be
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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the data dir: private
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
    language: str | None  # the agent's choice; None: the browser's (request_language)
    session_version: int = 0  # the account's, when the session was made

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


def _user(agent: m.Agent) -> User:
    return User(
        agent_id=agent.id,
        username=agent.username,
        name=agent.name,
        role=str(agent.role.value if hasattr(agent.role, "value") else agent.role),
        language=normalize(agent.language),
        session_version=agent.session_version or 0,
    )


@dataclass(frozen=True)
class Account:
    """What a session is checked against on every request."""

    session_version: int
    active: bool
    role: str
    name: str


class AgentDirectory:
    """Reads accounts from the agents table (blocking calls: run them in a thread), and
    keeps the in-memory copy that sessions are checked against (:meth:`account`)."""

    def __init__(
        self, sessions: sessionmaker[Session], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self._accounts: dict[int, Account] = {}
        self._loaded_at: float | None = None
        self._lock: asyncio.Lock | None = None

    def load_accounts(self, agent_id: int | None = None) -> dict[int, Account]:
        """Every account in one query, or just ``agent_id``'s (blocking)."""
        query = select(
            m.Agent.id, m.Agent.session_version, m.Agent.active, m.Agent.role, m.Agent.name
        )
        if agent_id is not None:
            query = query.where(m.Agent.id == agent_id)
        with self.sessions() as s:
            return {
                row.id: Account(
                    session_version=row.session_version or 0,
                    active=bool(row.active),
                    role=str(row.role.value if hasattr(row.role, "value") else row.role),
                    name=row.name,
                )
                for row in s.execute(query)
            }

    async def account(self, agent_id: int, *, min_version: int = 0) -> Account | None:
        """The account as of at most :data:`RECHECK_SECONDS` ago (None: gone). When the
        copy does not know the account or holds an older version than ``min_version`` (a
        login after the copy was made), that one row is read at once."""
        if self._stale():
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:  # one re-read for every request waiting on it
                if self._stale():
                    try:
                        self._accounts = await run_in_threadpool(self.load_accounts)
                    except Exception as exc:
                        if self._loaded_at is None:
                            raise
                        # the database is away: keep the copy rather than log everyone out
                        log.warning("web_accounts_reload_failed", error=repr(exc))
                    self._loaded_at = self.clock()
        account = self._accounts.get(agent_id)
        if account is None or account.session_version < min_version:
            fresh = await run_in_threadpool(self.load_accounts, agent_id)
            account = fresh.get(agent_id)
            if account is not None:
                self._accounts[agent_id] = account
        return account

    def _stale(self) -> bool:
        return self._loaded_at is None or self.clock() - self._loaded_at >= RECHECK_SECONDS

    def revoke(self, agent_id: int) -> None:
        """End every session of this agent (blocking): bump its session version."""
        with self.sessions() as s, s.begin():
            s.execute(
                update(m.Agent)
                .where(m.Agent.id == agent_id)
                .values(session_version=m.Agent.session_version + 1)
            )
        self._loaded_at = None  # the next check re-reads

    def config_changed(self) -> None:
        """serve's configuration watcher saw a change (db.config_version): the next
        request re-reads every account instead of up to RECHECK_SECONDS later."""
        self._loaded_at = None

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
LOGIN_NICE = 5


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
    """Log ``user`` in: a fresh session (and CSRF token) under the account's current
    ``session_version``. Returns the token."""
    request.session.clear()
    token = secrets.token_urlsafe(32)
    request.session.update(
        {
            "uid": user.agent_id,
            "user": user.username,
            "name": user.name,
            "role": user.role,
            "lang": user.language,  # None: request_language follows Accept-Language
            "csrf": token,
            "sv": user.session_version,
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
    version = session.get("sv")
    return User(
        agent_id=uid,
        username=str(session.get("user", "")),
        name=str(session.get("name", "")),
        role=str(session.get("role", "agent")),
        language=normalize(lang) if isinstance(lang := session.get("lang"), str) else None,
        session_version=version if isinstance(version, int) else -1,
    )


async def _valid_account(request: Request, user: User) -> Account | bool | None:
    """The account if the session is still valid, False if it was revoked; None when
    there is no directory to check against (a bare test app)."""
    directory: AgentDirectory | None = request.scope.get(SCOPE_DIRECTORY)
    if directory is None:
        return None
    account = await directory.account(user.agent_id, min_version=user.session_version)
    if account is None or not account.active:
        return False
    if account.session_version != user.session_version:
        return False  # logged out, new password, role change: sessions made before are over
    return account


async def current_user(request: Request) -> User | None:
    """The logged-in user, if the session is still valid (see the module docstring)."""
    user = session_user(request)
    if user is None:
        return None
    account = await _valid_account(request, user)
    if account is False:
        end_session(request)
        return None
    if isinstance(account, Account) and (account.role, account.name) != (user.role, user.name):
        request.session.update({"role": account.role, "name": account.name})
        user = User(
            user.agent_id,
            user.username,
            account.name,
            account.role,
            user.language,
            user.session_version,
        )
    return user


async def still_signed_in(request: Request, user: User) -> bool:
    """For a long-lived response (an event stream): is ``user``'s session still valid?
    Cheap (the directory's in-memory copy); called on every tick of the stream."""
    return await _valid_account(request, user) is not False


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


#: the HTTP status of the desk's refusal reasons (acd.contract), shared by the web modules
STATUS_FOR_REASON = {NOT_FOUND: 404, NOT_PERMITTED: 403, ILLEGAL_STATE: 409, INVALID: 400}


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
