"""The desk's *Test call* button (issue #16; docs/demo.md): one click places the demo's
test call (demo/testcall.py, the same caller as ``asterisk-cube demo call``) so the
person at the browser can take it, with the browser phone or their SIP phone.

    GET  /api/test-call   {available, did, caller_id, running}
    POST /api/test-call   places it -> {ok, did, caller_id}

Only with ``[demo] test_call_did`` set (``demo run`` sets it; a production desk shows no
button and the POST is refused, 409 ``test_call_off``). One test call at a time per
server (409 ``test_call_busy``). Signed-in agents (and above) only, CSRF like every POST.

The caller is started on the event-loop thread (its parent-death signal follows the
thread that started it, see :func:`asterisk_cube.demo.testcall.place`) and reaped when it
ends through a pidfd on the loop: no thread waits for it.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.testcall import CallTarget, DemoCallError, from_settings
from ..logs import get_logger
from .auth import refusal
from .i18n import gettext as _

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..config import DemoSettings
    from ..demo.sipp import SippProcess
    from .auth import User
    from .desk_host import DeskHost

log = get_logger(__name__)


class DeskTestCall:
    def __init__(self, desktop: DeskHost, target: CallTarget | None) -> None:
        self.desktop = desktop
        self.target = target
        self.proc: SippProcess | None = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def state(self) -> dict[str, Any]:
        if self.target is None:
            return {"available": False}
        return {
            "available": True,
            "did": self.target.did,
            "caller_id": self.target.caller_id,
            "running": self.running(),
        }

    async def get(self, request: Request, user: User) -> Response:
        return JSONResponse(self.state())

    async def call(self, request: Request, user: User) -> Response:
        if self.target is None:
            return refusal(
                request,
                "test_call_off",
                409,
                message=_("No test-call line is set up on this server."),
            )
        busy = _("A test call is already under way: take it or wait until it ends.")
        if self.running():
            return refusal(request, "test_call_busy", 409, message=busy)
        from ..demo.testcall import place  # the demo package: only on a demo server

        try:
            proc = place(self.target)
        except DemoCallError as exc:  # the port is taken: `demo call` in another shell
            return refusal(request, "test_call_busy", 409, detail=str(exc), message=busy)
        except (OSError, RuntimeError) as exc:  # no sipp binary, cannot fork...
            log.warning("test_call_failed", agent=user.agent_id, error=str(exc))
            return refusal(
                request,
                "test_call_failed",
                503,
                detail=str(exc),
                message=_("The test call could not be placed: %(reason)s") % {"reason": exc},
            )
        self.proc = proc
        self._reap_when_done(proc)
        log.info("test_call_placed", agent=user.agent_id, did=self.target.did)
        return JSONResponse(
            {"ok": True, "did": self.target.did, "caller_id": self.target.caller_id}
        )

    def _reap_when_done(self, proc: SippProcess) -> None:
        import asyncio

        assert proc.proc is not None
        popen = proc.proc
        try:
            fd = os.pidfd_open(popen.pid)
        except OSError:  # it has ended already (or no pidfd): the next poll reaps it
            popen.poll()
            return
        loop = asyncio.get_running_loop()

        def ended() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            with contextlib.suppress(Exception):
                log.info("test_call_ended", code=popen.poll())

        loop.add_reader(fd, ended)

    def routes(self) -> list[BaseRoute]:
        api = self.desktop.api
        return [
            Route("/api/test-call", api(self.get), methods=["GET"]),
            Route("/api/test-call", api(self.call), methods=["POST"]),
        ]


def desk_test_call(desktop: DeskHost, demo: DemoSettings) -> list[BaseRoute]:
    """The Test call routes for ``desktop`` (always mounted: unconfigured, they say so)."""
    return DeskTestCall(desktop, from_settings(demo)).routes()
