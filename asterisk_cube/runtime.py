"""The one-process runtime behind ``asterisk-cube serve``.

One asyncio loop runs:

* the ARI supervisor (Stasis app, reconnects, re-sync)   -> ``state.supervisor``
* the FastAGI server (guarded panoramisk application)     -> ``state.agi``
* the web app (Starlette on uvicorn, same loop)            -> ``state.web``
* any extra components, e.g. the AMI monitor later       -> ``components={"ami": factory}``

A component is ``async def component(state: RuntimeState) -> None`` that runs until
cancelled. If any part dies unexpectedly the runtime shuts the rest down and exits 1 (the
service manager restarts it); SIGTERM/SIGINT shut down cleanly and exit 0::

    def wire(state: RuntimeState) -> None:          # setup hook: runs before anything listens
        state.agi.add_route("entry", entry)
        state.web_routes.append(Route("/panel", panel))
        state.extras["distributor"] = Distributor(...)

    runtime = Runtime(
        settings,
        # a StasisHandler, or a factory called with the state once state.supervisor exists
        handler=lambda state: InboundApp(state.settings, state.supervisor, ...),
        agi_routes={"entry": entry},                # added to the built-in "ping"
        extra_routes=[Route("/panel", panel)],      # web routes
        components={"ami": ami_monitor},            # placeholder slot for the AMI monitor
        setup=[wire],                               # sync or async hooks
    )
    exit_code = asyncio.run(runtime.run())
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from asterisk_cube.agi.server import AgiServer
from asterisk_cube.agi.session import AgiRoute, ping

from . import __version__
from .ari.supervisor import AriSupervisor, StasisHandler
from .config import Settings
from .embedded_server import EmbeddedServer
from .events import EventHub
from .limits import fit_connection_caps, quiet_accept_errors, raise_open_file_limit
from .logs import get_logger
from .web.app import create_app
from .web.guard import BodyDeadline, ConnectionGuard, guarded_protocol

log = get_logger(__name__)

Component = Callable[["RuntimeState"], Coroutine[Any, Any, None]]
SetupHook = Callable[["RuntimeState"], Any]  # may return an awaitable
HandlerFactory = Callable[["RuntimeState"], StasisHandler]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BIND = 2


@dataclass
class RuntimeState:
    """What the running parts share; the web app sees it as ``request.app.state.cube``."""

    settings: Settings
    hub: EventHub
    supervisor: AriSupervisor | None = None
    agi: AgiServer | None = None
    web: Any = None  # the uvicorn.Server
    web_guard: ConnectionGuard | None = None  # header deadline + connection cap
    started_at: float | None = None
    components: dict[str, asyncio.Task] = field(default_factory=dict)
    web_routes: list[BaseRoute] = field(default_factory=list)  # setup hooks may add routes
    extras: dict[str, Any] = field(default_factory=dict)  # for later parts (db engine, ...)

    @property
    def web_url(self) -> str:
        host = self.settings.web.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.settings.web.port}/"

    @property
    def agi_url(self) -> str:
        return f"agi://{self.settings.agi.host}:{self.settings.agi.port}/"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # backlog: a burst of connects waits in the kernel instead of being dropped (a dropped
    # SYN is retried only after 1 s)
    sock = socket.create_server((host, port), family=family, reuse_port=False, backlog=1024)
    sock.setblocking(False)
    return sock


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        handler: StasisHandler | HandlerFactory | None = None,
        agi_routes: Mapping[str, AgiRoute] | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        components: Mapping[str, Component] | None = None,
        setup: Sequence[SetupHook] = (),
        hub: EventHub | None = None,
        on_ready: Callable[[RuntimeState], None] | None = None,
        install_signal_handlers: bool = True,
    ):
        self.settings = settings
        self.state = RuntimeState(settings=settings, hub=hub or EventHub())
        self.handler = handler
        self.agi_routes = {"ping": ping, **(agi_routes or {})}
        self.extra_routes = list(extra_routes)
        self.extra_components = dict(components or {})
        self.setup_hooks = list(setup)
        self.on_ready = on_ready
        self.install_signal_handlers = install_signal_handlers
        self.stop_event: asyncio.Event | None = None
        self.stop_reason = ""

    def request_stop(self, reason: str = "requested") -> None:
        if self.stop_event is None:
            return
        if self.stop_event.is_set():
            log.info("serve_stop_already_requested", reason=reason)
            return
        self.stop_reason = reason
        self.stop_event.set()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or until a part fails (exit 1)."""
        loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        settings, state = self.settings, self.state
        log.info("serve_start", version=__version__, config=settings.source)
        # Outside traffic must not take what calls need (issue #12): enough descriptors,
        # caps on web connections and AGI sessions below them, and accept errors logged
        # once per interval instead of once per refused connection.
        web_cap, agi_cap = fit_connection_caps(
            settings.web.max_connections, settings.agi.max_sessions, raise_open_file_limit()
        )
        quiet_accept_errors(loop)

        try:
            agi_sock = _bind(settings.agi.host, settings.agi.port)
        except OSError as exc:
            log.error("agi_bind_failed", host=settings.agi.host, port=settings.agi.port, error=exc)
            return EXIT_BIND
        try:
            web_sock = _bind(settings.web.host, settings.web.port)
        except OSError as exc:
            agi_sock.close()
            log.error("web_bind_failed", host=settings.web.host, port=settings.web.port, error=exc)
            return EXIT_BIND

        if self.install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)

        exit_code = EXIT_OK
        try:
            # build the parts, let setup hooks wire them, then start listening
            state.agi = AgiServer(
                settings.agi.host,
                settings.agi.port,
                hub=state.hub,
                command_timeout=settings.agi.command_timeout,
                max_sessions=agi_cap,
            )
            for name, route in self.agi_routes.items():
                state.agi.add_route(name, route)
            state.supervisor = AriSupervisor(settings.ari, state.hub)
            if self.handler is not None:
                handler = self.handler
                if not hasattr(handler, "on_event"):
                    handler = handler(state)  # a factory
                state.supervisor.handler = handler
            state.web_routes.extend(self.extra_routes)
            for hook in self.setup_hooks:
                result = hook(state)
                if inspect.isawaitable(result):
                    await result

            await state.agi.start(sock=agi_sock)
            state.web_guard = ConnectionGuard(
                web_cap, settings.web.header_timeout, settings.web.body_timeout
            )
            app = create_app(settings, state, extra_routes=state.web_routes)
            config = uvicorn.Config(
                BodyDeadline(app, state.web_guard),
                http=guarded_protocol(state.web_guard),
                log_config=None,
                access_log=False,
                lifespan="auto",
                timeout_graceful_shutdown=3,
                server_header=False,
                # X-Forwarded-For/-Proto only from [web] trusted_proxies (README)
                proxy_headers=bool(settings.web.proxy_list()),
                forwarded_allow_ips=settings.web.proxy_list(),
            )
            state.web = EmbeddedServer(config)
            state.components["web"] = asyncio.create_task(
                state.web.serve(sockets=[web_sock]), name="web"
            )
            state.components["ari"] = asyncio.create_task(state.supervisor.run(), name="ari")

            # later parts (AMI monitor, dialer, ...)
            for name, component in self.extra_components.items():
                state.components[name] = asyncio.create_task(component(state), name=name)

            state.started_at = time.time()
            log.info(
                "serve_ready",
                web=state.web_url,
                agi=state.agi_url,
                ari=settings.ari.url,
                app=settings.ari.app,
            )
            if self.on_ready is not None:
                self.on_ready(state)

            stopper = asyncio.create_task(self.stop_event.wait(), name="stop")
            done, _ = await asyncio.wait(
                {stopper, *state.components.values()}, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            for task in done:
                if task is stopper:
                    continue
                died = None if task.cancelled() else task.exception()
                log.error(
                    "component_died", component=task.get_name(), error=repr(died) if died else "-"
                )
                self.stop_reason = f"{task.get_name()} died"
                exit_code = EXIT_FAILED
        except Exception:
            log.exception("serve_failed")
            exit_code = EXIT_FAILED
        finally:
            await self._shutdown()
            for sock in (agi_sock, web_sock):
                sock.close()  # no-op if a server already closed it
            if self.install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            log.info("serve_stop", reason=self.stop_reason or "-", exit_code=exit_code)
        return exit_code

    async def _shutdown(self) -> None:
        state = self.state
        log.info("serve_stopping", reason=self.stop_reason or "-")
        started = time.monotonic()

        async def stop_web() -> None:
            task = state.components.get("web")
            if state.web is None or task is None or task.done():
                return
            state.web.should_exit = True
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(task)
            except (TimeoutError, Exception):
                task.cancel()

        async def stop_agi() -> None:
            if state.agi is not None:
                await state.agi.close(grace=2.0)

        await asyncio.gather(stop_web(), stop_agi(), return_exceptions=True)

        async def cancel(names: list[str]) -> None:
            tasks = [t for n, t in state.components.items() if n in names and not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=3)

        # ARI last: the others' cleanup (the dialer ending its unbridged lines) talks to
        # Asterisk through it.
        await cancel([n for n in state.components if n not in ("web", "ari")])
        await cancel(["ari"])
        state.hub.close()
        log.info("serve_stopped", seconds=round(time.monotonic() - started, 2))


def serve(settings: Settings, **kwargs: Any) -> int:
    """Blocking entry point: run the runtime in a new event loop, return the exit code."""
    return asyncio.run(Runtime(settings, **kwargs).run())
