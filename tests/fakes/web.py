"""Building the desktop web app around a :class:`FakeDesk` for tests.

* :func:`make_accounts` - a SQLite database (migrated) with agents and hashed passwords.
* :func:`make_app` - ``create_app`` + ``desktop_mount`` exactly as ``serve`` mounts it.
* :class:`LiveServer` - an app on a real uvicorn, in a thread with its own event loop, on a
  free port. ``live.call(fn, *args)`` runs a driver on the server's loop (the hub must be
  used from that loop).
* :class:`LiveDesktop` - the desktop app on a ``LiveServer`` (browser tests, the SSE
  client); ``fakes.panel.LivePanel`` is the live panel's.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import uvicorn
from argon2 import PasswordHasher

from asterisk_cube.config import Settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount

from .desk import FakeDesk, demo_desk


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    name: str
    role: str = "agent"
    language: str = "en"
    active: bool = True


DEFAULT_ACCOUNTS = (
    Account("kari", "kari-secret-1", "Kari Agent"),
    Account("ola", "ola-secret-12", "Ola Agent"),
    Account("siri", "siri-secret-1", "Siri Supervisor", role="supervisor"),
    Account("adam", "adam-secret-1", "Adam Admin", role="admin"),
    Account("nora", "nora-secret-1", "Nora Norsk", language="nb"),
    Account("gone", "gone-secret-1", "Gone Agent", active=False),
)


# Cheap argon2 parameters: verify_password reads them from the hash, so logins in tests
# take milliseconds instead of ~0.3 s each. (Production hashes use the library defaults.)
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_accounts(path: Path, accounts: Iterable[Account] = DEFAULT_ACCOUNTS):
    """(sessionmaker, {username: agent_id}) for a fresh SQLite DB under ``path``."""
    url = f"sqlite:///{path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    ids: dict[str, int] = {}
    with transaction(sessions) as s:
        for acc in accounts:
            agent = m.Agent(
                username=acc.username,
                name=acc.name,
                role=m.Role(acc.role),
                password_hash=_CHEAP.hash(acc.password),
                language=acc.language,
                active=acc.active,
            )
            s.add(agent)
            s.flush()
            ids[acc.username] = agent.id
    return sessions, ids


def make_settings(path: Path) -> Settings:
    settings = Settings(data_dir=path)
    settings.web.host = "127.0.0.1"
    return settings


def make_app(settings: Settings, desk: Any, hub: EventHub, sessions, *, state=None, **kwargs):
    state = state or SimpleNamespace(hub=hub)
    mount = desktop_mount(settings, desk, hub, sessions, **kwargs)
    return create_app(settings, state, extra_routes=[mount])


def demo_for(hub: EventHub, ids: dict[str, int]) -> FakeDesk:
    """The demo fake desk with every account of ``ids`` as an agent ("kari" first)."""
    order = sorted(ids, key=lambda u: (u != "kari", ids[u]))
    return demo_desk(hub, [(ids[u], u, u.title()) for u in order])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """An app on uvicorn in a background thread with its own event loop, on a free port.

    Subclasses build their app in ``_serve`` (on the server's loop, so hubs and desks
    belong to it) and hand it to :meth:`_run_server`. ``live.call(fn, *args)`` runs a
    driver on that loop from the test's thread.
    """

    what = "live"  # for the thread's name and the start-up error
    graceful_shutdown = 2  # seconds uvicorn waits for open requests (the SSE streams)

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"live-{self.what}", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError(f"{self.what} server did not start")
        if self._error:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self._serve()

    async def _serve(self) -> None:
        raise NotImplementedError

    async def _run_server(self, app: Any, state: SimpleNamespace) -> None:
        """Serve ``app`` until :meth:`stop`; ``start`` returns once it listens."""
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=self.graceful_shutdown,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        state.web = self.server
        task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if task.done():
                await task
            await asyncio.sleep(0.02)
        self._ready.set()
        await task

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args)`` (sync or async) on the server's loop and return its result."""
        assert self.loop is not None

        async def runner() -> Any:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LiveDesktop(LiveServer):
    """The desktop on uvicorn in a background thread (see module docstring)."""

    what = "desktop"

    def __init__(
        self,
        path: Path,
        *,
        accounts: Iterable[Account] = DEFAULT_ACCOUNTS,
        heartbeat: float = 15.0,
        desk_factory: Callable[[EventHub, dict[str, int]], FakeDesk] = demo_for,
    ) -> None:
        super().__init__()
        self.path = path
        self.sessions, self.ids = make_accounts(path, accounts)
        self.settings = make_settings(path)
        self.heartbeat = heartbeat
        self.desk_factory = desk_factory
        self.desk: FakeDesk | None = None
        self.hub: EventHub | None = None

    async def _serve(self) -> None:
        self.hub = EventHub()
        self.desk = self.desk_factory(self.hub, self.ids)
        state = SimpleNamespace(hub=self.hub, web=None)
        app = make_app(
            self.settings,
            self.desk,
            self.hub,
            self.sessions,
            state=state,
            heartbeat=self.heartbeat,
        )
        await self._run_server(app, state)
